package nfs4client

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"github.com/buildbarn/go-xdr/pkg/protocols/nfsv4"
)

// Session is one client of the server. For NFSv4.1 (NewSession) it is a
// client ID with one session, every call going through slot 0 behind a
// SEQUENCE; for NFSv4.0 (NewClient40) it is a confirmed client ID whose
// open- and lock-owners carry seqids. Its methods may be called from
// several goroutines: they take turns, one COMPOUND at a time.
type Session struct {
	mu       sync.Mutex
	conn     *Conn
	minor    uint32
	ownerID  string
	verifier nfsv4.Verifier4
	opts     options

	clientID    uint64
	sessionID   nfsv4.Sessionid4
	flags       uint32              // eir_flags
	fore        nfsv4.ChannelAttrs4 // as CREATE_SESSION granted
	seq         uint32              // next sa_sequenceid of slot 0
	inDoubt     bool                // slot 0's last call may or may not have run
	statusFlags uint32              // sr_status_flags of the last SEQUENCE

	ownerSeq map[string]uint32 // 4.0: next seqid of each open-owner
	locks    map[lockKey]*lockState
}

// lockKey names the lock state of a lock-owner on a file.
type lockKey struct{ owner, fh string }

// lockState is what LOCK returned for a lock-owner on a file.
type lockState struct {
	stateid   nfsv4.Stateid4
	seqid     uint32 // 4.0: next lock seqid
	openOwner string // the open-owner whose open it came from
}

// Option changes how NewSession, NewClient40 and Recover set a client up.
type Option func(*options)

type options struct {
	verifier   *nfsv4.Verifier4
	fore       *nfsv4.ChannelAttrs4
	reclaiming bool
}

// WithVerifier sets the client verifier (co_verifier, or the verifier
// of SETCLIENTID). By default it is derived from the owner ID, so that
// one owner ID is one client incarnation; another verifier is the same
// client rebooted, whose state the server must drop.
func WithVerifier(v nfsv4.Verifier4) Option { return func(o *options) { o.verifier = &v } }

// WithForeChannel replaces the fore channel attributes CREATE_SESSION
// asks for (DefaultForeChannel).
func WithForeChannel(a nfsv4.ChannelAttrs4) Option { return func(o *options) { o.fore = &a } }

// Reclaiming leaves out the RECLAIM_COMPLETE that NewSession sends, so
// the caller can reclaim opens and locks first and then call
// ReclaimComplete. Recover implies it.
func Reclaiming() Option { return func(o *options) { o.reclaiming = true } }

// DefaultForeChannel is what CREATE_SESSION asks for: requests and
// replies big enough for 1 MiB READs and WRITEs, one slot (only slot 0
// is used).
var DefaultForeChannel = nfsv4.ChannelAttrs4{
	CaMaxrequestsize:        1<<20 + 64<<10,
	CaMaxresponsesize:       1<<20 + 64<<10,
	CaMaxresponsesizeCached: 8 << 10,
	CaMaxoperations:         32,
	CaMaxrequests:           1,
}

// backChannel is minimal: no callback service runs here.
var backChannel = nfsv4.ChannelAttrs4{
	CaMaxrequestsize:  4096,
	CaMaxresponsesize: 4096,
	CaMaxoperations:   2,
	CaMaxrequests:     1,
}

// callbackProgram is the cb_program sent; nothing answers it.
const callbackProgram = 0x40000000

func newSession(conn *Conn, minor uint32, ownerID string, opts []Option) *Session {
	s := &Session{conn: conn, minor: minor, ownerID: ownerID, ownerSeq: map[string]uint32{}, locks: map[lockKey]*lockState{}}
	for _, o := range opts {
		o(&s.opts)
	}
	if s.opts.verifier != nil {
		s.verifier = *s.opts.verifier
	} else {
		h := sha256.Sum256([]byte("nfs4client verifier\x00" + ownerID))
		copy(s.verifier[:], h[:])
	}
	return s
}

// NewSession sets up an NFSv4.1 client on conn: EXCHANGE_ID for the
// client owner ownerID (SP4_NONE, no pNFS), CREATE_SESSION without a
// back channel, then RECLAIM_COMPLETE (unless Reclaiming), which RFC
// 5661 section 18.51.3 asks of every new client before its first lock.
func NewSession(ctx context.Context, conn *Conn, ownerID string, opts ...Option) (*Session, error) {
	s := newSession(conn, 1, ownerID, opts)
	if err := s.establish(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// NewClient40 sets up an NFSv4.0 client on conn: SETCLIENTID for the
// client ID ownerID, then SETCLIENTID_CONFIRM.
func NewClient40(ctx context.Context, conn *Conn, ownerID string, opts ...Option) (*Session, error) {
	s := newSession(conn, 0, ownerID, opts)
	if err := s.establish(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Recover sets up the same client anew over conn, as a client does when
// the server lost its state (a restart: NFS4ERR_BADSESSION,
// NFS4ERR_STALE_CLIENTID): the same owner ID and verifier, a new client
// ID (and session). RECLAIM_COMPLETE is left to the caller, after it
// reclaimed with Open's Reclaim and Lock's reclaim.
func (s *Session) Recover(ctx context.Context, conn *Conn) (*Session, error) {
	opts := s.opts
	opts.verifier = &s.verifier
	opts.reclaiming = true
	n := newSession(conn, s.minor, s.ownerID, []Option{func(o *options) { *o = opts }})
	if err := n.establish(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

func (s *Session) establish(ctx context.Context) error {
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	if s.minor == 0 {
		return s.setClientID(ctx)
	}
	if err := s.exchangeID(ctx); err != nil {
		return err
	}
	if err := s.createSession(ctx); err != nil {
		return err
	}
	if !s.opts.reclaiming {
		return s.ReclaimComplete(ctx)
	}
	return nil
}

// single sends a COMPOUND of the one operation op (no SEQUENCE: for the
// operations allowed alone) and returns its result.
func (s *Session) single(ctx context.Context, tag string, op nfsv4.NfsArgop4) (nfsv4.NfsResop4, error) {
	res, err := s.conn.Compound(ctx, s.minor, tag, []nfsv4.NfsArgop4{op})
	if err != nil {
		return nil, err
	}
	if err := firstFailure(res); err != nil {
		return nil, err
	}
	return res.Resarray[0], nil
}

func (s *Session) exchangeID(ctx context.Context) error {
	r, err := s.single(ctx, "exchange_id", &nfsv4.NfsArgop4_OP_EXCHANGE_ID{OpexchangeId: nfsv4.ExchangeId4args{
		EiaClientowner:  nfsv4.ClientOwner4{CoVerifier: s.verifier, CoOwnerid: []byte(s.ownerID)},
		EiaFlags:        nfsv4.EXCHGID4_FLAG_USE_NON_PNFS,
		EiaStateProtect: &nfsv4.StateProtect4A_SP4_NONE{},
		EiaClientImplId: []nfsv4.NfsImplId4{{NiiDomain: "efsd.test", NiiName: "nfs4client"}},
	}})
	if err != nil {
		return fmt.Errorf("nfs4client: EXCHANGE_ID: %w", err)
	}
	op, err := as[*nfsv4.NfsResop4_OP_EXCHANGE_ID](r)
	if err != nil {
		return err
	}
	ok, err := as[*nfsv4.ExchangeId4res_NFS4_OK](op.OpexchangeId)
	if err != nil {
		return err
	}
	if _, sp4none := ok.EirResok4.EirStateProtect.(*nfsv4.StateProtect4R_SP4_NONE); !sp4none {
		return fmt.Errorf("%w: EXCHANGE_ID: state protection %d for SP4_NONE", ErrMalformed, ok.EirResok4.EirStateProtect.GetSprHow())
	}
	s.clientID = ok.EirResok4.EirClientid
	s.flags = ok.EirResok4.EirFlags
	s.seq = ok.EirResok4.EirSequenceid // CREATE_SESSION's csa_sequence
	return nil
}

func (s *Session) createSession(ctx context.Context) error {
	fore := DefaultForeChannel
	if s.opts.fore != nil {
		fore = *s.opts.fore
	}
	args := nfsv4.CreateSession4args{
		CsaClientid:      s.clientID,
		CsaSequence:      s.seq,
		CsaForeChanAttrs: fore,
		CsaBackChanAttrs: backChannel,
		CsaCbProgram:     callbackProgram,
		CsaSecParms:      []nfsv4.CallbackSecParms4{&nfsv4.CallbackSecParms4_AUTH_NONE{}},
	}
	r, err := s.single(ctx, "create_session", &nfsv4.NfsArgop4_OP_CREATE_SESSION{OpcreateSession: args})
	if err != nil {
		return fmt.Errorf("nfs4client: CREATE_SESSION: %w", err)
	}
	op, err := as[*nfsv4.NfsResop4_OP_CREATE_SESSION](r)
	if err != nil {
		return err
	}
	ok, err := as[*nfsv4.CreateSession4res_NFS4_OK](op.OpcreateSession)
	if err != nil {
		return err
	}
	if ok.CsrResok4.CsrSequence != args.CsaSequence {
		return fmt.Errorf("%w: CREATE_SESSION: csr_sequence %d for csa_sequence %d", ErrMalformed, ok.CsrResok4.CsrSequence, args.CsaSequence)
	}
	if ok.CsrResok4.CsrForeChanAttrs.CaMaxrequests == 0 {
		return fmt.Errorf("%w: CREATE_SESSION: no slots", ErrMalformed)
	}
	s.sessionID = ok.CsrResok4.CsrSessionid
	s.fore = ok.CsrResok4.CsrForeChanAttrs
	s.seq = 1 // a slot's first sequence ID (RFC 5661 section 2.10.6.1)
	return nil
}

func (s *Session) setClientID(ctx context.Context) error {
	r, err := s.single(ctx, "setclientid", &nfsv4.NfsArgop4_OP_SETCLIENTID{Opsetclientid: nfsv4.Setclientid4args{
		Client: nfsv4.NfsClientId4{Verifier: s.verifier, Id: []byte(s.ownerID)},
		// No callback service runs: port 0 makes the server's probe
		// fail, so it grants no delegation.
		Callback:      nfsv4.CbClient4{CbProgram: callbackProgram, CbLocation: nfsv4.Netaddr4{NaRNetid: "tcp", NaRAddr: "127.0.0.1.0.0"}},
		CallbackIdent: 1,
	}})
	if err != nil {
		return fmt.Errorf("nfs4client: SETCLIENTID: %w", err)
	}
	op, err := as[*nfsv4.NfsResop4_OP_SETCLIENTID](r)
	if err != nil {
		return err
	}
	ok, err := as[*nfsv4.Setclientid4res_NFS4_OK](op.Opsetclientid)
	if err != nil {
		return err
	}
	if _, err := s.single(ctx, "setclientid_confirm", &nfsv4.NfsArgop4_OP_SETCLIENTID_CONFIRM{OpsetclientidConfirm: nfsv4.SetclientidConfirm4args{
		Clientid: ok.Resok4.Clientid, SetclientidConfirm: ok.Resok4.SetclientidConfirm,
	}}); err != nil {
		return fmt.Errorf("nfs4client: SETCLIENTID_CONFIRM: %w", err)
	}
	s.clientID = ok.Resok4.Clientid
	return nil
}

// as asserts v's type, as a malformed reply when it is not T.
func as[T any](v any) (T, error) {
	t, ok := v.(T)
	if !ok {
		return t, fmt.Errorf("%w: got %T, want %T", ErrMalformed, v, t)
	}
	return t, nil
}

// Do sends ops in one COMPOUND and returns their results. In 4.1 a
// SEQUENCE on slot 0 goes first, and its result is not among those
// returned. The first failed operation is returned as a *StatusError
// with the results up to and including it; a failed SEQUENCE is one
// with no results.
func (s *Session) Do(ctx context.Context, ops ...nfsv4.NfsArgop4) ([]nfsv4.NfsResop4, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.do(ctx, "", ops)
}

// do is Do with s.mu held.
func (s *Session) do(ctx context.Context, tag string, ops []nfsv4.NfsArgop4) ([]nfsv4.NfsResop4, error) {
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	if s.minor == 0 {
		res, err := s.conn.Compound(ctx, 0, tag, ops)
		if err != nil {
			return nil, err
		}
		return res.Resarray, firstFailure(res)
	}
	if s.inDoubt {
		if err := s.settle(ctx); err != nil {
			return nil, err
		}
	}
	seq := s.seq
	res, err := s.conn.Compound(ctx, s.minor, tag, append([]nfsv4.NfsArgop4{s.sequence(seq)}, ops...))
	if err != nil {
		// Lost, timed out or unreadable: the server may or may not
		// have run it, and so moved the slot on or not.
		s.inDoubt = true
		return nil, err
	}
	if len(res.Resarray) == 0 || OpStatus(res.Resarray[0]) != nfsv4.NFS4_OK {
		return nil, firstFailure(res)
	}
	s.seq++
	op, err := as[*nfsv4.NfsResop4_OP_SEQUENCE](res.Resarray[0])
	if err != nil {
		return nil, err
	}
	ok, err := as[*nfsv4.Sequence4res_NFS4_OK](op.Opsequence)
	if err != nil {
		return nil, err
	}
	if r := ok.SrResok4; r.SrSessionid != s.sessionID || r.SrSequenceid != seq || r.SrSlotid != 0 {
		return nil, fmt.Errorf("%w: SEQUENCE answered for session %x slot %d seq %d, sent %x slot 0 seq %d",
			ErrMalformed, r.SrSessionid, r.SrSlotid, r.SrSequenceid, s.sessionID, seq)
	}
	s.statusFlags = ok.SrResok4.SrStatusFlags
	return res.Resarray[1:], firstFailure(res)
}

func (s *Session) sequence(seq uint32) nfsv4.NfsArgop4 {
	return &nfsv4.NfsArgop4_OP_SEQUENCE{Opsequence: nfsv4.Sequence4args{SaSessionid: s.sessionID, SaSequenceid: seq}}
}

// settle finds out whether the call whose outcome was lost ran, so the
// next one uses the right sequence ID: a lone SEQUENCE with the ID after
// it succeeds if it ran and is misordered if not. NFS4ERR_DELAY (it is
// still running) is retried until ctx ends.
func (s *Session) settle(ctx context.Context) error {
	for {
		res, err := s.conn.Compound(ctx, s.minor, "settle", []nfsv4.NfsArgop4{s.sequence(s.seq + 1)})
		if err != nil {
			return err
		}
		st := res.Status
		switch st {
		case nfsv4.NFS4_OK:
			s.seq += 2
		case nfsv4.NFS4ERR_SEQ_MISORDERED:
		case nfsv4.NFS4ERR_DELAY:
			select {
			case <-ctx.Done():
				return fmt.Errorf("nfs4client: slot 0 busy: %w", ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		s.inDoubt = false
		if st != nfsv4.NFS4_OK && st != nfsv4.NFS4ERR_SEQ_MISORDERED {
			return &StatusError{Op: nfsv4.OP_SEQUENCE, Status: st}
		}
		return nil
	}
}

// Renew keeps the lease: RENEW in 4.0, a lone SEQUENCE in 4.1.
func (s *Session) Renew(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.minor == 0 {
		_, err := s.do(ctx, "renew", []nfsv4.NfsArgop4{&nfsv4.NfsArgop4_OP_RENEW{Oprenew: nfsv4.Renew4args{Clientid: s.clientID}}})
		return err
	}
	_, err := s.do(ctx, "renew", nil)
	return err
}

// ReclaimComplete tells the server this client has reclaimed all it
// will (RECLAIM_COMPLETE, rca_one_fs false).
func (s *Session) ReclaimComplete(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.do(ctx, "reclaim_complete", []nfsv4.NfsArgop4{&nfsv4.NfsArgop4_OP_RECLAIM_COMPLETE{OpreclaimComplete: nfsv4.ReclaimComplete4args{}}})
	return err
}

// DestroySession destroys the session, alone in its COMPOUND as RFC
// 5661 section 18.37 allows.
func (s *Session) DestroySession(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	_, err := s.single(ctx, "destroy_session", &nfsv4.NfsArgop4_OP_DESTROY_SESSION{OpdestroySession: nfsv4.DestroySession4args{DsaSessionid: s.sessionID}})
	return err
}

// DestroyClientID destroys the client ID, which must have no session
// left; alone in its COMPOUND.
func (s *Session) DestroyClientID(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	_, err := s.single(ctx, "destroy_clientid", &nfsv4.NfsArgop4_OP_DESTROY_CLIENTID{OpdestroyClientid: nfsv4.DestroyClientid4args{DcaClientid: s.clientID}})
	return err
}

// Vanish closes the connection and destroys nothing, as a client that
// crashed or lost the network: the server keeps its state until the
// lease expires. The Session can go on over another connection
// (SetConn).
func (s *Session) Vanish() error { return s.Conn().Close() }

// SetConn moves the client to conn; in 4.1 the session's next SEQUENCE
// binds conn to it (SP4_NONE).
func (s *Session) SetConn(conn *Conn) {
	s.mu.Lock()
	s.conn = conn
	s.mu.Unlock()
}

// Conn is the connection the client uses.
func (s *Session) Conn() *Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn
}

// MinorVersion is 1 for a NewSession client, 0 for NewClient40.
func (s *Session) MinorVersion() uint32 { return s.minor }

// OwnerID is the client owner (co_ownerid, or the id of SETCLIENTID).
func (s *Session) OwnerID() string { return s.ownerID }

// ClientID is the client ID the server gave.
func (s *Session) ClientID() uint64 { return s.clientID }

// SessionID is the 4.1 session's ID.
func (s *Session) SessionID() nfsv4.Sessionid4 { return s.sessionID }

// ExchangeFlags are EXCHANGE_ID's eir_flags: EXCHGID4_FLAG_CONFIRMED_R
// tells a client the server already knew.
func (s *Session) ExchangeFlags() uint32 { return s.flags }

// ForeChannel is the fore channel CREATE_SESSION granted.
func (s *Session) ForeChannel() nfsv4.ChannelAttrs4 { return s.fore }

// Seq is the sequence ID the next SEQUENCE on slot 0 will carry, for
// tests that build their own.
func (s *Session) Seq() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq
}

// StatusFlags are the sr_status_flags of the last successful SEQUENCE
// (SEQ4_STATUS_*: state revoked, lease moved, reclaim needed...).
func (s *Session) StatusFlags() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statusFlags
}
