package nfs4

import (
	"bytes"
	"encoding/binary"

	"github.com/buildbarn/go-xdr/pkg/protocols/nfsv4"
)

const (
	exchgidFlagUseNonPNFS    = 0x00010000
	exchgidFlagConfirmedR    = 0x80000000
	exchgidFlagSuppMovedRe   = 0x00000001
	exchgidFlagBindPrincSt   = 0x00000100
	createSessionFlagPersist = 0x1
	createSessionFlagBack    = 0x2
)

// sequence serves SEQUENCE: the session's slot, the retransmission cache, the lease.
func (cs *compound) sequence(a *nfsv4.Sequence4args) (nfsv4.NfsResop4, status, []byte) {
	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[a.SaSessionid]
	if sess == nil {
		return nil, errBadSession, nil
	}
	if int(a.SaSlotid) >= len(sess.slots) {
		return nil, errBadSlot, nil
	}
	sl := &sess.slots[a.SaSlotid]
	switch {
	case a.SaSequenceid == sl.seq:
		if sl.busy {
			return nil, nfsv4.NFS4ERR_DELAY, nil
		}
		if sl.cached {
			return nil, ok, sl.reply
		}
		return nil, errRetryUncached, nil
	case a.SaSequenceid != sl.seq+1:
		return nil, errSeqMisordered, nil
	}
	if sl.busy {
		return nil, nfsv4.NFS4ERR_DELAY, nil
	}
	s.cached -= len(sl.reply)
	sl.seq, sl.busy, sl.cached, sl.reply = a.SaSequenceid, true, false, nil
	cs.sess, cs.slot, cs.c, cs.cacheThis = sess, sl, sess.c, a.SaCachethis
	sess.c.renewed = cs.now
	high := uint32(len(sess.slots) - 1)
	return &nfsv4.NfsResop4_OP_SEQUENCE{Opsequence: &nfsv4.Sequence4res_NFS4_OK{SrResok4: nfsv4.Sequence4resok{
		SrSessionid: sess.id, SrSequenceid: sl.seq, SrSlotid: a.SaSlotid, SrHighestSlotid: high,
		SrTargetHighestSlotid: high, SrStatusFlags: 0}}}, ok, nil
}

// exchangeID serves EXCHANGE_ID (RFC 8881 18.35): a client record per co_ownerid, a new one when the
// client restarted (another verifier), confirmed by CREATE_SESSION.
func (cs *compound) exchangeID(a *nfsv4.ExchangeId4args) (nfsv4.NfsResop4, status) {
	if _, isNone := a.EiaStateProtect.(*nfsv4.StateProtect4A_SP4_NONE); !isNone {
		return nil, nfsv4.NFS4ERR_ENCR_ALG_UNSUPP
	}
	if len(a.EiaClientowner.CoOwnerid) == 0 || len(a.EiaClientowner.CoOwnerid) > 1024 {
		return nil, errInval
	}
	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	owner := string(a.EiaClientowner.CoOwnerid)
	var conf, unconf *client
	for _, c := range s.byOwner[owner] {
		if c.minor != 1 {
			continue
		}
		if c.confirmed {
			conf = c
		} else {
			unconf = c
		}
	}
	var c *client
	switch {
	case conf != nil && conf.verifier == a.EiaClientowner.CoVerifier:
		c = conf
	default:
		if unconf != nil {
			s.dropClient(unconf)
		}
		if !s.roomForClient() {
			return nil, nfsv4.NFS4ERR_DELAY
		}
		c = &client{id: s.newID(), owner: owner, verifier: a.EiaClientowner.CoVerifier, minor: 1,
			renewed: cs.now, sessions: map[[16]byte]*session{}, states: map[string]*state{}}
		c.reclaimable = s.reclaim == nil || s.reclaim[owner]
		s.clients[c.id] = c
		s.byOwner[owner] = append(s.byOwner[owner], c)
	}
	flags := uint32(exchgidFlagUseNonPNFS)
	if c.confirmed {
		flags |= exchgidFlagConfirmedR
	}
	return &nfsv4.NfsResop4_OP_EXCHANGE_ID{OpexchangeId: &nfsv4.ExchangeId4res_NFS4_OK{EirResok4: nfsv4.ExchangeId4resok{
		EirClientid: c.id, EirSequenceid: c.csSeq + 1, EirFlags: flags,
		EirStateProtect: &nfsv4.StateProtect4R_SP4_NONE{},
		EirServerOwner:  nfsv4.ServerOwner4{SoMinorId: 0, SoMajorId: s.owner},
		EirServerScope:  s.owner,
		EirServerImplId: []nfsv4.NfsImplId4{{NiiDomain: "efsd.dev", NiiName: "efsd"}},
	}}}, ok
}

func clampAttrs(a nfsv4.ChannelAttrs4, maxReq, maxResp, maxCached, ops, reqs uint32) nfsv4.ChannelAttrs4 {
	return nfsv4.ChannelAttrs4{
		CaMaxrequestsize:        min(a.CaMaxrequestsize, maxReq),
		CaMaxresponsesize:       min(a.CaMaxresponsesize, maxResp),
		CaMaxresponsesizeCached: min(a.CaMaxresponsesizeCached, maxCached),
		CaMaxoperations:         min(a.CaMaxoperations, ops),
		CaMaxrequests:           max(min(a.CaMaxrequests, reqs), 1),
	}
}

// createSession serves CREATE_SESSION: it confirms the client ID (dropping the state of the
// client's previous incarnation) and makes a session with its slot table.
func (cs *compound) createSession(a *nfsv4.CreateSession4args) (nfsv4.NfsResop4, status) {
	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clients[a.CsaClientid]
	if c == nil || c.minor != 1 {
		return nil, errStaleClientID
	}
	switch {
	case a.CsaSequence == c.csSeq && c.csReply != nil:
		return &nfsv4.NfsResop4_OP_CREATE_SESSION{OpcreateSession: &nfsv4.CreateSession4res_NFS4_OK{CsrResok4: *c.csReply}}, ok
	case a.CsaSequence != c.csSeq+1:
		return nil, errSeqMisordered
	}
	if len(c.sessions) >= maxSessions {
		return nil, nfsv4.NFS4ERR_TOO_MANY_OPS
	}
	if a.CsaForeChanAttrs.CaMaxrequestsize < 512 || a.CsaForeChanAttrs.CaMaxresponsesize < 512 {
		return nil, nfsv4.NFS4ERR_TOOSMALL
	}
	if !c.confirmed {
		for _, old := range s.byOwner[c.owner] {
			if old != c && old.confirmed && old.minor == 1 {
				s.dropClient(old) // the client restarted: its previous state is gone (it reclaims in grace)
			}
		}
		c.confirmed = true
	}
	c.renewed = cs.now
	sess := &session{c: c}
	binary.BigEndian.PutUint64(sess.id[:8], c.id)
	randomBytes(sess.id[8:])
	sess.fore = clampAttrs(a.CsaForeChanAttrs, maxIO+4096, maxIO+4096, maxCachedReply, maxOps, maxSlots)
	// No call is ever made on the back channel: its attributes are the client's own (Linux refuses a
	// session whose back channel differs from what it asked, in some directions).
	sess.back = a.CsaBackChanAttrs
	sess.back.CaRdmaIrd = nil
	sess.slots = make([]slot, sess.fore.CaMaxrequests)
	sess.flags = a.CsaFlags &^ (createSessionFlagPersist | createSessionFlagBack)
	s.sessions[sess.id] = sess
	c.sessions[sess.id] = sess
	c.csSeq = a.CsaSequence
	res := nfsv4.CreateSession4resok{CsrSessionid: sess.id, CsrSequence: a.CsaSequence, CsrFlags: sess.flags,
		CsrForeChanAttrs: sess.fore, CsrBackChanAttrs: sess.back}
	c.csReply = &res
	return &nfsv4.NfsResop4_OP_CREATE_SESSION{OpcreateSession: &nfsv4.CreateSession4res_NFS4_OK{CsrResok4: res}}, ok
}

func (cs *compound) destroySession(id [16]byte) status {
	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[id]
	if sess == nil {
		return errBadSession
	}
	if cs.sess == sess && cs.slot != nil {
		cs.slot.busy = false
		cs.slot = nil // the reply of the compound that destroyed it is not cached
	}
	for i := range sess.slots {
		s.cached -= len(sess.slots[i].reply)
	}
	delete(s.sessions, id)
	delete(sess.c.sessions, id)
	return ok
}

func (cs *compound) destroyClientID(id uint64) status {
	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clients[id]
	if c == nil {
		return errStaleClientID
	}
	if len(c.sessions) > 0 || len(c.states) > 0 {
		return errClientIDBusy
	}
	if s.dropClient(c) {
		s.storeRecordLocked()
	}
	return ok
}

func (cs *compound) bindConn(a *nfsv4.BindConnToSession4args) (nfsv4.NfsResop4, status) {
	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[a.BctsaSessid]
	if sess == nil {
		return nil, errBadSession
	}
	sess.c.renewed = cs.now
	return &nfsv4.NfsResop4_OP_BIND_CONN_TO_SESSION{OpbindConnToSession: &nfsv4.BindConnToSession4res_NFS4_OK{
		BctsrResok4: nfsv4.BindConnToSession4resok{BctsrSessid: sess.id, BctsrDir: nfsv4.CDFS4_FORE}}}, ok
}

func (cs *compound) reclaimComplete() status {
	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if cs.c.reclaimComplete {
		return errCompleteAlready
	}
	cs.c.reclaimComplete = true
	s.endGraceIfDone(cs.now)
	return ok
}

// setClientID serves 4.0's SETCLIENTID: an unconfirmed record, confirmed by SETCLIENTID_CONFIRM.
// No callback path is ever used (no delegations are granted).
func (cs *compound) setClientID(a *nfsv4.Setclientid4args) (nfsv4.NfsResop4, status) {
	if len(a.Client.Id) == 0 || len(a.Client.Id) > 1024 {
		return nil, errInval
	}
	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	owner := string(a.Client.Id)
	for _, c := range s.byOwner[owner] {
		if c.minor == 0 && !c.confirmed {
			s.dropClient(c)
			break
		}
	}
	var conf *client
	for _, c := range s.byOwner[owner] {
		if c.minor == 0 && c.confirmed {
			conf = c
		}
	}
	if !s.roomForClient() {
		return nil, nfsv4.NFS4ERR_RESOURCE
	}
	c := &client{owner: owner, verifier: a.Client.Verifier, minor: 0, renewed: cs.now,
		sessions: map[[16]byte]*session{}, states: map[string]*state{}}
	if conf != nil && conf.verifier == a.Client.Verifier {
		c.id = conf.id // a callback update: same client ID
	} else {
		c.id = s.newID()
	}
	c.reclaimable = s.reclaim == nil || s.reclaim[owner]
	randomBytes(c.confirmVerf[:])
	if conf == nil || conf.id != c.id {
		s.clients[c.id] = c
	}
	s.byOwner[owner] = append(s.byOwner[owner], c)
	return &nfsv4.NfsResop4_OP_SETCLIENTID{Opsetclientid: &nfsv4.Setclientid4res_NFS4_OK{
		Resok4: nfsv4.Setclientid4resok{Clientid: c.id, SetclientidConfirm: c.confirmVerf}}}, ok
}

func (cs *compound) setClientIDConfirm(a *nfsv4.SetclientidConfirm4args) status {
	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	var match *client
	for _, list := range s.byOwner {
		for _, c := range list {
			if c.minor == 0 && c.id == a.Clientid && !c.confirmed && bytes.Equal(c.confirmVerf[:], a.SetclientidConfirm[:]) {
				match = c
			}
		}
	}
	if match == nil {
		for _, c := range s.byOwner {
			for _, cc := range c {
				if cc.id == a.Clientid && cc.confirmed {
					return ok // a retransmission
				}
			}
		}
		return errStaleClientID
	}
	for _, old := range s.byOwner[match.owner] {
		if old != match && old.minor == 0 && old.confirmed {
			if old.id == match.id {
				// a callback update: keep the state, take the new record's verifier
				old.verifier = match.verifier
				old.renewed = cs.now
				s.dropClientRecordOnly(match)
				return ok
			}
			s.dropClient(old)
		}
	}
	match.confirmed = true
	match.renewed = cs.now
	s.clients[match.id] = match
	return ok
}

// dropClientRecordOnly forgets an unconfirmed record that shares its ID with a confirmed one.
func (s *Server) dropClientRecordOnly(c *client) {
	list := s.byOwner[c.owner]
	for i, o := range list {
		if o == c {
			s.byOwner[c.owner] = append(list[:i:i], list[i+1:]...)
			return
		}
	}
}

func (cs *compound) renew(id uint64) status {
	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clients[id]
	if c == nil || !c.confirmed {
		return errStaleClientID
	}
	c.renewed = cs.now
	return ok
}
