package peer

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/efsd/efsd/internal/efs"
	"github.com/efsd/efsd/internal/netlimit"
	"github.com/efsd/efsd/internal/remotesync"
)

// Control is what the peer endpoint asks of the domain (efs.Service).
type Control interface {
	AcceptReplication(ctx context.Context, peer string, req *efs.RemoteCreate) (*efs.RemoteDestination, error)
	PeerEvent(ctx context.Context, peer, id, event string) error
	// PeerQuery answers whether this deployment recorded configuration id
	// (efs.PeerRecorded, efs.PeerPending, efs.PeerUnknown).
	PeerQuery(ctx context.Context, peer, id string) (string, error)
}

// Receivers applies transfers into destinations (replication.Manager):
// op of configuration id from peer, its body, its reply written to w.
type Receivers interface {
	ServePeer(ctx context.Context, peer, id, op string, body io.Reader, w io.Writer) error
}

// ServerOptions wire a Server.
type ServerOptions struct {
	Identity  *Identity
	Peers     *Set
	Control   Control
	Receivers Receivers
	Logger    *slog.Logger
	// MaxConns caps connections (default 64) and MaxConnsPerClient those
	// of one address (default 16). A connection that has not finished its
	// TLS handshake within 10 s is closed; so is one idle for 2 min, or a
	// request body that stalls for IdleTimeout (default 60 s).
	MaxConns, MaxConnsPerClient int
	IdleTimeout                 time.Duration
}

// Limits of the peer endpoint.
const (
	maxControlBody = 64 << 10 // a RemoteCreate or an event
	// maxReply bounds a sync reply, which is buffered so that a failure
	// becomes an error status rather than a truncated stream.
	maxReply = 65 << 20
)

// Server is a deployment's peer endpoint: mutual TLS, then the ERP/1
// routes under /erp/v1/.
type Server struct {
	o   ServerOptions
	srv *http.Server
}

// NewServer returns a Server; Serve starts it.
func NewServer(o ServerOptions) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 64
	}
	if o.MaxConnsPerClient <= 0 {
		o.MaxConnsPerClient = 16
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 60 * time.Second
	}
	s := &Server{o: o}
	s.srv = &http.Server{
		Handler:           s,
		TLSConfig:         s.tlsConfig(),
		ReadHeaderTimeout: 10 * time.Second, // covers the TLS handshake too
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		// Frames of up to 256 KiB: a chunks request's body crosses in
		// fewer frames (and flow-control updates) than at 16 KiB.
		HTTP2: &http.HTTP2Config{MaxConcurrentStreams: 32, MaxReceiveBufferPerStream: 4 << 20, MaxReceiveBufferPerConnection: 16 << 20,
			MaxReadFrameSize: 256 << 10},
		ErrorLog: slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug),
	}
	return s
}

// tlsConfig accepts only TLS 1.3 clients presenting a pinned peer
// certificate; the handshake fails for anyone else, before any request.
func (s *Server) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{s.o.Identity.Cert},
		ClientAuth:   tls.RequireAnyClientCert,
		NextProtos:   []string{"h2"},
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("no client certificate")
			}
			if _, ok := s.o.Peers.byFingerprint(Fingerprint(raw[0])); !ok {
				return errors.New("client certificate is not a configured peer's")
			}
			return nil
		},
	}
}

// Serve serves ln (a plain TCP listener) until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	guarded := netlimit.Listen(ln, netlimit.Options{
		MaxConns: s.o.MaxConns, MaxConnsPerClient: s.o.MaxConnsPerClient, Logger: s.o.Logger, Name: "peer",
	})
	err := s.srv.ServeTLS(guarded, "", "")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting and waits for requests in flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	return err
}

var (
	configID = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)
	opName   = regexp.MustCompile(`^[a-z]{1,16}$`)
)

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		writeError(w, http.StatusForbidden, kindPeer, "forbidden", "no client certificate")
		return
	}
	p, ok := s.o.Peers.byFingerprint(Fingerprint(r.TLS.PeerCertificates[0].Raw))
	if !ok {
		writeError(w, http.StatusForbidden, kindPeer, "forbidden", "not a configured peer")
		return
	}
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, kindPeer, "method", "POST only")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/erp/v1/replications")
	if !ok {
		writeError(w, http.StatusNotFound, kindPeer, "route", "no such route")
		return
	}
	parts := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	switch {
	case rest == "":
		s.create(w, r, p.Name)
	case len(parts) == 2 && parts[1] == "events" && configID.MatchString(parts[0]):
		s.event(w, r, p.Name, parts[0])
	case len(parts) == 2 && parts[1] == "query" && configID.MatchString(parts[0]):
		s.query(w, r, p.Name, parts[0])
	case len(parts) == 3 && parts[1] == "sync" && configID.MatchString(parts[0]) && opName.MatchString(parts[2]):
		s.sync(w, r, p.Name, parts[0], parts[2])
	default:
		writeError(w, http.StatusNotFound, kindPeer, "route", "no such route")
	}
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, peer string) {
	var req efs.RemoteCreate
	if err := readJSON(r.Body, &req); err != nil {
		writeError(w, http.StatusBadRequest, kindPeer, "protocol", err.Error())
		return
	}
	if !configID.MatchString(req.ID) {
		writeError(w, http.StatusBadRequest, kindPeer, "protocol", "bad configuration ID")
		return
	}
	out, err := s.o.Control.AcceptReplication(r.Context(), peer, &req)
	if err != nil {
		s.domainError(w, err, peer, req.ID)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// eventBody is the body of POST .../events.
type eventBody struct {
	Event string `json:"event"`
}

func (s *Server) event(w http.ResponseWriter, r *http.Request, peer, id string) {
	var ev eventBody
	if err := readJSON(r.Body, &ev); err != nil {
		writeError(w, http.StatusBadRequest, kindPeer, "protocol", err.Error())
		return
	}
	if err := s.o.Control.PeerEvent(r.Context(), peer, id, ev.Event); err != nil {
		s.domainError(w, err, peer, id)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// queryBody is the answer to POST .../query.
type queryBody struct {
	State string `json:"state"`
}

// query answers whether this deployment recorded a configuration whose
// destination the peer made (efs.Service.PeerQuery); the request has no
// body.
func (s *Server) query(w http.ResponseWriter, r *http.Request, peer, id string) {
	state, err := s.o.Control.PeerQuery(r.Context(), peer, id)
	if err != nil {
		s.domainError(w, err, peer, id)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(queryBody{State: state})
}

func (s *Server) sync(w http.ResponseWriter, r *http.Request, peer, id, op string) {
	rc := http.NewResponseController(w)
	body := &idleReader{r: r.Body, idle: s.o.IdleTimeout, rc: rc}
	var buf bytes.Buffer
	err := s.o.Receivers.ServePeer(r.Context(), peer, id, op, body, &limitedWriter{b: &buf, max: maxReply})
	if err != nil {
		code := remotesync.ErrorCode(err)
		if errors.Is(err, efs.ErrReplicationGone) {
			code = remotesync.CodeGone
		}
		if code == remotesync.CodeInternal {
			s.o.Logger.Error("peer sync request failed", "replicationId", id, "peer", peer, "op", op, "err", err)
		}
		msg := err.Error()
		var re *remotesync.RemoteError
		if errors.As(err, &re) {
			msg = re.Message
		}
		writeError(w, syncStatus(code), kindSync, code, msg)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(buf.Bytes())
}

func (s *Server) domainError(w http.ResponseWriter, err error, peer, id string) {
	var e *efs.Error
	if errors.As(err, &e) {
		writeError(w, http.StatusBadRequest, kindEFS, string(e.Code), e.Message)
		return
	}
	s.o.Logger.Error("peer request failed", "replicationId", id, "peer", peer, "err", err)
	writeError(w, http.StatusInternalServerError, kindPeer, "internal", "internal error")
}

// syncStatus is the HTTP status of a receiver's error code.
func syncStatus(code string) int {
	switch code {
	case remotesync.CodeGone:
		return http.StatusGone
	case remotesync.CodeBusy:
		return http.StatusConflict
	case remotesync.CodeProtocol:
		return http.StatusBadRequest
	case remotesync.CodeNoSpace:
		return http.StatusInsufficientStorage
	case remotesync.CodeReadOnly:
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

// Error kinds: which error type the client rebuilds.
const (
	kindEFS  = "efs"  // *efs.Error from the domain
	kindSync = "sync" // *remotesync.RemoteError from a receiver
	kindPeer = "peer" // the endpoint refused the request itself
)

// errorBody is every error reply.
type errorBody struct {
	Kind    string `json:"kind"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, kind, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(errorBody{Kind: kind, Code: code, Message: msg})
}

// readJSON decodes one bounded JSON document.
func readJSON(r io.Reader, v any) error {
	b, err := io.ReadAll(io.LimitReader(r, maxControlBody+1))
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if len(b) > maxControlBody {
		return errors.New("body too large")
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("decode body: %w", err)
	}
	return nil
}

// idleReader extends the request's read deadline before each read, so a
// body may take as long as it needs while data flows, but a stalled one is
// cut after idle.
type idleReader struct {
	r    io.Reader
	idle time.Duration
	rc   *http.ResponseController
}

func (r *idleReader) Read(p []byte) (int, error) {
	r.rc.SetReadDeadline(time.Now().Add(r.idle))
	return r.r.Read(p)
}

// limitedWriter buffers at most max bytes.
type limitedWriter struct {
	b   *bytes.Buffer
	max int
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > w.max {
		return 0, errors.New("reply too large")
	}
	return w.b.Write(p)
}
