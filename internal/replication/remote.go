package replication

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/efsd/efsd/internal/efs"
	"github.com/efsd/efsd/internal/remotesync"
	"github.com/efsd/efsd/internal/treesync"
)

// PeerLink reaches the peer deployments (peer.Client).
type PeerLink interface {
	// Transport carries configuration id's transfer to peer.
	Transport(peer, id string) remotesync.Transport
	// Tell delivers an event (efs.PeerDeleteAll, efs.PeerDeleteLocal).
	Tell(ctx context.Context, peer, id, event string) error
	// Query asks the peer holding a configuration's source whether it
	// recorded the configuration (efs.PeerRecorded, efs.PeerPending,
	// efs.PeerUnknown).
	Query(ctx context.Context, peer, id string) (string, error)
}

// codeNotReady: the destination exists but cannot take a pass yet (being
// created, or its receiver not opened yet).
const codeNotReady = "notready"

// opReady is answered by ServePeer itself: may passes start?
const opReady = "ready"

// opStatus is answered by ServePeer itself: the source's side failed a
// pass for a reason of its own (its file system unreadable, missing), which
// its destination's deployment shows rather than "not heard from".
const opStatus = "status"

// sourceStatus is the body of opStatus.
type sourceStatus struct {
	Status  string `json:"status"`  // PAUSED or ERROR
	Message string `json:"message"` // the source side's StatusMessage
	// RetryIn is when the source tries again: until then (and a silence
	// after it) the destination does not call it unheard from.
	RetryIn time.Duration `json:"retryIn"`
}

// Bounds of a sourceStatus, as read by the destination.
const (
	maxStatusBody    = 4 << 10
	maxStatusMessage = 1024
	maxStatusRetryIn = time.Hour
)

// remoteDestination is a file system of a peer deployment, reached through
// remotesync over the peer link.
type remoteDestination struct {
	m      *Manager
	rep    *efs.Replication
	src    string
	tr     remotesync.Transport
	log    *slog.Logger
	sender *remotesync.Sender

	// unreachableSince is the start of the current run of failures to
	// reach the peer; zero while it answers.
	unreachableSince time.Time
}

func (d *remoteDestination) hostPath() string { return "" }

func (d *remoteDestination) close() error {
	if d.sender != nil {
		return d.sender.Close()
	}
	return nil
}

// ready asks the peer whether passes may start: the destination exists
// there and is available. A configuration confirmed before (not ENABLING)
// is ready at once: its passes report what is wrong.
func (d *remoteDestination) ready(ctx context.Context) (bool, error) {
	if d.rep.Status != efs.RepEnabling {
		return true, nil
	}
	rc, err := d.tr.RoundTrip(ctx, opReady, http.NoBody)
	if err != nil {
		return false, err
	}
	rc.Close()
	return true, nil
}

func (d *remoteDestination) pass(ctx context.Context, o passOptions) (passStats, error) {
	if _, err := os.Stat(d.src); err != nil {
		return passStats{}, &rootError{side: "source", err: err}
	}
	if d.sender == nil {
		s, err := remotesync.NewSender(d.src, d.m.statePath(d.rep.ID, ".sent"), remotesync.SenderOptions{
			Workers: d.m.opts.CopyWorkers, Now: d.m.opts.Now, Logger: d.log})
		if err != nil {
			return passStats{}, fmt.Errorf("open sender state: %w", err)
		}
		d.sender = s
	}
	po := remotesync.PassOptions{Start: o.start, Verify: o.scrub, OnDifference: o.onDifference}
	if o.progress != nil {
		po.Progress = func(st remotesync.Stats) { o.progress(st.Stats) }
	}
	st, err := d.sender.Pass(ctx, d.tr, po)
	out := passStats{Stats: st.Stats, ChunksSent: st.ChunksSent, BytesSent: st.BytesSent}
	if err == nil {
		d.unreachableSince = time.Time{}
		return out, nil
	}
	if errors.Is(err, efs.ErrPeerUnreachable) {
		if d.unreachableSince.IsZero() {
			d.unreachableSince = d.m.opts.Now()
		}
		return out, &unreachableError{peer: d.rep.Peer, side: "destination", since: d.unreachableSince, err: err}
	}
	d.unreachableSince = time.Time{}
	return out, err
}

// failed reports a failure of the source's side to the peer: not one the
// peer caused (it knows those) or could not hear (it says so itself).
func (d *remoteDestination) failed(ctx context.Context, err error, status, msg string, retryIn time.Duration) {
	var ue *unreachableError
	var remote *remotesync.RemoteError
	if errors.As(err, &ue) || errors.As(err, &remote) {
		return
	}
	body, jerr := json.Marshal(sourceStatus{Status: status, Message: msg, RetryIn: retryIn})
	if jerr != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rc, terr := d.tr.RoundTrip(ctx, opStatus, bytes.NewReader(body))
	if terr != nil {
		d.log.Debug("tell the destination's deployment of a failed pass", "err", terr)
		return
	}
	rc.Close()
}

// unconfigured is the transport to a peer this deployment no longer has
// in its configuration: every pass fails, saying so.
type unconfigured string

func (u unconfigured) RoundTrip(context.Context, string, io.Reader) (io.ReadCloser, error) {
	return nil, fmt.Errorf("%w: no peer named %q is configured", efs.ErrPeerUnreachable, string(u))
}

// unreachableError: the peer holding the other side could not be reached.
type unreachableError struct {
	peer, side string
	since      time.Time
	err        error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("%s deployment '%s' unreachable since %s: %v", e.side, e.peer, e.since.UTC().Format(time.RFC3339), e.err)
}
func (e *unreachableError) Unwrap() error { return e.err }

// statePath is where a configuration's engine state of one kind lives
// (ID.record, ID.sent, ID.recv); "" keeps it in memory.
func (m *Manager) statePath(id, suffix string) string {
	if m.opts.RecordDir == "" || !recordName.MatchString(id) {
		return ""
	}
	return filepath.Join(m.opts.RecordDir, id+suffix)
}

// stateSuffixes are the files a configuration's engine state may take.
var stateSuffixes = []string{".record", ".sent", ".recv"}

// receiver is the destination side of a configuration whose source is on
// a peer: the peer's passes are applied through it.
type receiver struct {
	rcv  *remotesync.Receiver
	peer string

	mu        sync.Mutex
	inflight  int
	lastHeard time.Time // on this deployment's clock
	silent    bool      // PAUSED for silence has been recorded
	// quietUntil: the source reported a failure and its next attempt;
	// not called silent before then.
	quietUntil time.Time
}

// silence is how long a destination waits for its source's next request
// before it reports the source unheard from.
func (m *Manager) silence() time.Duration {
	return max(3*m.opts.RescanInterval, 3*time.Second)
}

// openReceiver starts taking the peer's passes for r.
func (m *Manager) openReceiver(ctx context.Context, r *efs.Replication) {
	m.mu.Lock()
	_, ok := m.receivers[r.ID]
	m.mu.Unlock()
	if ok {
		return
	}
	id := r.ID
	rcv, err := remotesync.NewReceiver(m.paths.Path(r.Dest), m.statePath(id, ".recv"), remotesync.ReceiverOptions{
		Now:    m.opts.Now,
		Logger: m.log.With("replicationId", id),
		OnCommit: func(start time.Time) error {
			m.heard(id, true)
			return m.svc.RecordProgress(context.WithoutCancel(ctx), id, efs.Progress{Status: efs.RepEnabled, Replicated: start})
		},
	})
	if err != nil {
		m.log.Error("open replication receiver", "replicationId", id, "err", err)
		return
	}
	m.mu.Lock()
	m.receivers[id] = &receiver{rcv: rcv, peer: r.Peer, lastHeard: m.opts.Now()}
	m.mu.Unlock()
}

// closeReceiver stops taking passes for id and waits until none is being
// applied.
func (m *Manager) closeReceiver(id string) {
	m.mu.Lock()
	rc, ok := m.receivers[id]
	delete(m.receivers, id)
	m.mu.Unlock()
	if ok {
		if err := rc.rcv.Close(); err != nil {
			m.log.Warn("close replication receiver", "replicationId", id, "err", err)
		}
	}
}

// heard notes a request (or, committed, a completed pass) from the source.
func (m *Manager) heard(id string, committed bool) {
	m.mu.Lock()
	rc := m.receivers[id]
	m.mu.Unlock()
	if rc == nil {
		return
	}
	rc.mu.Lock()
	rc.lastHeard = m.opts.Now()
	if committed {
		rc.silent = false
	}
	rc.mu.Unlock()
}

// watchSilence reports, for each destination whose source has been silent
// too long, that it is not heard from: the source's deployment may be down
// or cut off, and only it could say so otherwise.
func (m *Manager) watchSilence(ctx context.Context) {
	m.mu.Lock()
	type quiet struct {
		id, peer string
		since    time.Time
	}
	var due []quiet
	now := m.opts.Now()
	for id, rc := range m.receivers {
		rc.mu.Lock()
		if rc.inflight == 0 && !rc.silent && now.Sub(rc.lastHeard) > m.silence() && now.After(rc.quietUntil) {
			rc.silent = true
			due = append(due, quiet{id, rc.peer, rc.lastHeard})
		}
		rc.mu.Unlock()
	}
	m.mu.Unlock()
	for _, q := range due {
		msg := fmt.Sprintf("Source deployment '%s' not heard from since %s; replication resumes when it is back.",
			q.peer, q.since.UTC().Format(time.RFC3339))
		if err := m.svc.RecordProgress(ctx, q.id, efs.Progress{Status: efs.RepPaused, StatusMessage: msg}); err != nil && !errors.Is(err, efs.ErrReplicationGone) {
			m.log.Warn("record silent source", "replicationId", q.id, "err", err)
		}
	}
}

// ServePeer applies one request of peer's transfer for configuration id,
// only while the configuration is running with its source on that peer and
// its destination here; otherwise the peer is told it is gone.
func (m *Manager) ServePeer(ctx context.Context, peer, id, op string, body io.Reader, w io.Writer) error {
	r, dst, err := m.svc.ReplicationForPeer(ctx, peer, id)
	if errors.Is(err, efs.ErrReplicationGone) {
		return &remotesync.RemoteError{Code: remotesync.CodeGone,
			Message: fmt.Sprintf("Replication configuration %s does not exist at the destination deployment (deleted there); nothing is written to its destination.", id)}
	}
	if err != nil {
		return err
	}
	if dst.State != efs.StateAvailable {
		return &remotesync.RemoteError{Code: codeNotReady, Message: fmt.Sprintf("Destination file system %s is %s.", r.Dest.ID, dst.State)}
	}
	m.mu.Lock()
	rc := m.receivers[id]
	if rc != nil {
		rc.mu.Lock()
		rc.inflight++
		rc.lastHeard = m.opts.Now()
		rc.mu.Unlock()
	}
	m.mu.Unlock()
	if rc == nil {
		return &remotesync.RemoteError{Code: codeNotReady, Message: "The destination deployment is starting this configuration's receiver."}
	}
	defer func() {
		rc.mu.Lock()
		rc.inflight--
		rc.lastHeard = m.opts.Now()
		rc.mu.Unlock()
	}()
	switch op {
	case opReady:
		return nil
	case opStatus:
		return m.sourceFailed(ctx, rc, peer, id, body)
	}
	return rc.rcv.Serve(ctx, op, body, w)
}

// sourceFailed records at the destination's side what the source's side
// reported of a failed pass: its status, its message (said to come from
// there) and, until its next attempt, no "not heard from".
func (m *Manager) sourceFailed(ctx context.Context, rc *receiver, peer, id string, body io.Reader) error {
	b, err := io.ReadAll(io.LimitReader(body, maxStatusBody+1))
	if err != nil {
		return err
	}
	var st sourceStatus
	if len(b) > maxStatusBody || json.Unmarshal(b, &st) != nil || (st.Status != efs.RepPaused && st.Status != efs.RepError) ||
		st.RetryIn < 0 || st.Message == "" {
		return &remotesync.RemoteError{Code: remotesync.CodeProtocol, Message: "malformed source status"}
	}
	rc.mu.Lock()
	rc.quietUntil = m.opts.Now().Add(min(st.RetryIn, maxStatusRetryIn) + m.silence())
	rc.silent = false
	rc.mu.Unlock()
	return m.svc.RecordProgress(ctx, id, efs.Progress{Status: st.Status, StatusMessage: reportedBy(peer, st.Message)})
}

// reportedBy is the StatusMessage shown for what peer reported: one line
// of valid UTF-8, at most maxStatusMessage characters of the peer's.
func reportedBy(peer, msg string) string {
	msg = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(msg, "\uFFFD"))
	if r := []rune(msg); len(r) > maxStatusMessage {
		msg = string(r[:maxStatusMessage]) + "…"
	}
	return fmt.Sprintf("The source deployment '%s' reports: %s", peer, msg)
}

// settlePeer carries a configuration's deletion to the peer holding its
// other side, in the background, until the peer has taken it into
// account; then the deletion is finished here. A destination deleted
// locally is released only now that nothing writes into it.
func (m *Manager) settlePeer(ctx context.Context, r *efs.Replication) {
	if r.PeerSide == efs.PeerSource && r.LocalSideDeleted() {
		if err := m.svc.ReleaseDestination(ctx, r.ID); err != nil {
			m.log.Error("release destination", "replicationId", r.ID, "err", err)
			return
		}
	}
	if r.PeerAcked {
		return
	}
	var event string
	switch {
	case r.Status == efs.RepDeleting:
		event = efs.PeerDeleteAll
	case r.LocalSideDeleted():
		event = efs.PeerDeleteLocal
	default:
		return // the peer deleted its side; ours waits for the user
	}
	m.mu.Lock()
	t := m.telling[r.ID]
	if t == nil {
		t = &telling{}
		m.telling[r.ID] = t
	}
	if t.busy || m.opts.Now().Before(t.next) {
		m.mu.Unlock()
		return
	}
	t.busy = true
	m.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := m.opts.Peers.Tell(tctx, r.Peer, r.ID, event)
		cancel()
		m.mu.Lock()
		t.busy = false
		if err != nil {
			if t.since.IsZero() {
				t.since = m.opts.Now()
			}
			t.failures++
			t.next = m.opts.Now().Add(min(time.Duration(1<<min(t.failures-1, 8))*time.Second, m.opts.MaxBackoff))
		} else {
			delete(m.telling, r.ID)
		}
		since, failures := t.since, t.failures
		m.mu.Unlock()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			level := slog.LevelDebug
			if failures == 1 {
				level = slog.LevelWarn // once per outage; the status message says the rest
			}
			m.log.Log(ctx, level, "tell peer", "replicationId", r.ID, "peer", r.Peer, "err", err)
			if r.Status == efs.RepDeleting {
				msg := fmt.Sprintf("Waiting for the %s deployment '%s' to delete its side; unreachable since %s (%v).",
					r.PeerSide, r.Peer, since.UTC().Format(time.RFC3339), err)
				if nerr := m.svc.NoteDeletionWait(ctx, r.ID, msg); nerr != nil {
					m.log.Warn("record deletion wait", "replicationId", r.ID, "err", nerr)
				}
			}
			return
		}
		if err := m.svc.PeerAcknowledged(ctx, r.ID); err != nil {
			m.log.Error("record peer acknowledgement", "replicationId", r.ID, "err", err)
		}
	}()
}

// doubtDelay is how long a destination whose source has not written into
// it yet waits before asking the source's deployment whether it recorded
// the configuration at all: twice the silence period, long enough for a
// client's retries of a create whose answer was lost (the SDKs back off up
// to 20 s) to take the destination over (efs.AcceptReplication) rather
// than see it removed and made again.
func (m *Manager) doubtDelay() time.Duration { return 2 * m.silence() }

// checkRecorded asks, in the background, the deployment holding r's
// source whether it recorded r, when r has a destination here that its
// source never wrote into: a CreateReplicationConfiguration there whose
// answer was lost (or whose caller gave up, or whose deployment crashed)
// made it here, and nothing else would ever remove it. Asked after
// doubtDelay, then every silence period while the answer is pending,
// with backoff while the peer cannot be reached. An answer of
// efs.PeerUnknown closes r's receiver and removes r, undoing what it did
// to its destination (efs.Service.AbandonUnrecorded); efs.PeerRecorded
// ends the questions (until a restart).
func (m *Manager) checkRecorded(ctx context.Context, r *efs.Replication) {
	if m.opts.Peers == nil {
		return
	}
	now := m.opts.Now()
	m.mu.Lock()
	d := m.doubts[r.ID]
	if !r.LastReplicatedAt.IsZero() {
		delete(m.doubts, r.ID)
		m.mu.Unlock()
		return
	}
	if d == nil {
		d = &doubt{next: now.Add(m.doubtDelay())}
		m.doubts[r.ID] = d
	}
	if d.settled || d.busy || now.Before(d.next) {
		m.mu.Unlock()
		return
	}
	d.busy = true
	m.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		state, err := m.opts.Peers.Query(qctx, r.Peer, r.ID)
		cancel()
		m.mu.Lock()
		switch {
		case err != nil:
			d.failures++
			d.next = m.opts.Now().Add(min(time.Duration(1<<min(d.failures-1, 8))*time.Second, m.opts.MaxBackoff))
		case state == efs.PeerRecorded:
			d.settled = true
		case state == efs.PeerUnknown:
			d.closing = true // no receiver is opened for it again
		default:
			d.failures = 0
			d.next = m.opts.Now().Add(m.silence())
		}
		failures := d.failures
		if state != efs.PeerUnknown {
			d.busy = false
		}
		m.mu.Unlock()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			level := slog.LevelDebug
			if failures == 1 {
				level = slog.LevelWarn
			}
			m.log.Log(ctx, level, "ask the source's deployment about a configuration never written into", "replicationId", r.ID, "peer", r.Peer, "err", err)
			return
		}
		if state != efs.PeerUnknown {
			return
		}
		// Nothing is in flight for it (its source never had a worker), and
		// no request reaches it once it is gone.
		m.closeReceiver(r.ID)
		done, err := m.svc.AbandonUnrecorded(ctx, r.Peer, r.ID)
		m.mu.Lock()
		d.busy, d.closing = false, false
		if err != nil || !done {
			d.next = m.opts.Now().Add(m.silence())
		}
		m.mu.Unlock()
		if err != nil {
			if ctx.Err() == nil {
				m.log.Error("remove a configuration its source's deployment never recorded", "replicationId", r.ID, "peer", r.Peer, "err", err)
			}
			return
		}
		if done {
			m.removeRecord(r.ID)
		}
	}()
}

// doubt is the question whether a source's deployment recorded a
// configuration, asked again with backoff.
type doubt struct {
	next     time.Time
	busy     bool
	closing  bool // answered unknown: being removed
	settled  bool // answered recorded
	failures int
}

// telling is the delivery of one event to a peer, retried with backoff.
type telling struct {
	busy     bool
	failures int
	since    time.Time
	next     time.Time
}

// passStats is what one pass did: treesync's counts, and for a peer
// destination what crossed the network.
type passStats struct {
	treesync.Stats
	ChunksSent, BytesSent int64
}
