// Package api is efsd's REST-JSON front end: it authenticates each request,
// decodes and validates it with the generated wire package, calls the
// domain service and renders the answer or one AWS-shaped error. It holds
// no business rules.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/efsd/efsd/internal/api/ec2api"
	"github.com/efsd/efsd/internal/api/wire"
	"github.com/efsd/efsd/internal/efs"
	"github.com/efsd/efsd/internal/sigv4"
)

// Credential is one access key and the account it belongs to.
type Credential struct {
	AccessKeyID     string
	SecretAccessKey string
	Account         string
}

// Config wires a Server.
type Config struct {
	Service     *efs.Service
	Credentials []Credential
	Logger      *slog.Logger
	Now         func() time.Time
	// RequestID makes request IDs; nil uses random UUIDs.
	RequestID func() string
	// Limits bound connections, time and request body memory.
	Limits Limits
	// Observe, when set, is told of every request as its access log line
	// is written: the operation, the status answered and the time taken
	// (metrics hook here).
	Observe func(op string, status int, d time.Duration)
}

// Server serves the EFS API, and EC2's actions that describe efsd's
// network (see ec2.go).
type Server struct {
	svc      *efs.Service
	verifier *sigv4.Verifier
	accounts map[string]Credential
	log      *slog.Logger
	reqID    func() string
	mux      *http.ServeMux
	limits   Limits
	bodies   *bodyBudget
	unknown  http.Handler // every request no operation's route matches
	observe  func(op string, status int, d time.Duration)

	// EC2's API on the same endpoint: its own verifier (the scope's service
	// differs) and wire package.
	ec2Verifier *sigv4.Verifier
	ec2         *ec2api.Handler
}

// call is one authenticated request on its way to a handler.
type call struct {
	ctx  context.Context
	r    *http.Request
	body []byte
	p    efs.Principal
}

// handler decodes a call, runs the operation and returns the response
// shape (nil for operations without output).
type handler func(c *call) (any, error)

// New builds a Server and its routes.
func New(cfg Config) *Server {
	s := &Server{
		svc:      cfg.Service,
		accounts: make(map[string]Credential, len(cfg.Credentials)),
		log:      cfg.Logger,
		reqID:    cfg.RequestID,
		mux:      http.NewServeMux(),
		limits:   cfg.Limits.WithDefaults(),
		observe:  cfg.Observe,
	}
	s.bodies = newBodyBudget(s.limits.BodyMemory)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.reqID == nil {
		s.reqID = randomRequestID
	}
	for _, c := range cfg.Credentials {
		s.accounts[c.AccessKeyID] = c
	}
	s.verifier = &sigv4.Verifier{
		Service: "elasticfilesystem",
		Now:     cfg.Now,
		Lookup: func(key string) (string, bool) {
			c, ok := s.accounts[key]
			return c.SecretAccessKey, ok
		},
	}
	s.ec2Verifier = &sigv4.Verifier{Service: ec2Service, Now: cfg.Now, Lookup: s.verifier.Lookup}
	s.ec2 = ec2api.New(cfg.Service)
	handlers := s.handlers()
	for _, op := range wire.Operations {
		h, ok := handlers[op.Name]
		if !ok {
			h = notImplemented(op.Name)
		}
		for _, pattern := range op.Patterns() {
			s.mux.Handle(pattern, s.wrap(op, h))
		}
	}
	// Whatever matches no operation (another method, an unknown path) is
	// authenticated like an operation and then answered 404, as AWS does;
	// "/" matches every method, so ServeMux never answers 405 itself.
	s.unknown = s.wrap(wire.Operation{Name: "UnknownOperation"}, func(c *call) (any, error) {
		return nil, &apiError{code: "UnknownOperationException", status: http.StatusNotFound,
			msg: fmt.Sprintf("No EFS operation matches %s %s.", c.r.Method, c.r.URL.EscapedPath())}
	})
	s.mux.Handle("/", s.unknown)
	return s
}

func (s *Server) handlers() map[string]handler {
	return map[string]handler{
		"CreateFileSystem":               s.createFileSystem,
		"DescribeFileSystems":            s.describeFileSystems,
		"DeleteFileSystem":               s.deleteFileSystem,
		"UpdateFileSystem":               s.updateFileSystem,
		"UpdateFileSystemProtection":     s.updateFileSystemProtection,
		"TagResource":                    s.tagResource,
		"UntagResource":                  s.untagResource,
		"ListTagsForResource":            s.listTagsForResource,
		"CreateTags":                     s.createTags,
		"DeleteTags":                     s.deleteTags,
		"DescribeTags":                   s.describeTags,
		"PutFileSystemPolicy":            s.putFileSystemPolicy,
		"DescribeFileSystemPolicy":       s.describeFileSystemPolicy,
		"DeleteFileSystemPolicy":         s.deleteFileSystemPolicy,
		"PutLifecycleConfiguration":      s.putLifecycleConfiguration,
		"DescribeLifecycleConfiguration": s.describeLifecycleConfiguration,
		"PutBackupPolicy":                s.putBackupPolicy,
		"DescribeBackupPolicy":           s.describeBackupPolicy,
		"PutAccountPreferences":          s.putAccountPreferences,
		"DescribeAccountPreferences":     s.describeAccountPreferences,

		"CreateReplicationConfiguration":    s.createReplicationConfiguration,
		"DescribeReplicationConfigurations": s.describeReplicationConfigurations,
		"DeleteReplicationConfiguration":    s.deleteReplicationConfiguration,

		"CreateMountTarget":                 s.createMountTarget,
		"DescribeMountTargets":              s.describeMountTargets,
		"DeleteMountTarget":                 s.deleteMountTarget,
		"DescribeMountTargetSecurityGroups": s.describeMountTargetSecurityGroups,
		"ModifyMountTargetSecurityGroups":   s.modifyMountTargetSecurityGroups,
		"CreateAccessPoint":                 s.createAccessPoint,
		"DescribeAccessPoints":              s.describeAccessPoints,
		"DeleteAccessPoint":                 s.deleteAccessPoint,
	}
}

// ServeHTTP serves the EFS API. A path that is not canonical (an empty,
// "." or ".." segment) names no operation: it never reaches ServeMux, which
// would answer it with a redirect to the cleaned path.
//
// A request signed for EC2 (its credential scope names "ec2") is served by
// the EC2 front end, and so is an unsigned one that looks like EC2's (so
// its refusal comes in EC2's format); every other one by EFS's.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if svc := sigv4.ClaimedService(r); svc == ec2Service || svc == "" && looksLikeEC2(r) {
		s.serveEC2(w, r)
		return
	}
	if !canonicalPath(r.URL.EscapedPath()) {
		s.unknown.ServeHTTP(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// canonicalPath reports whether p is absolute and has no empty, "." or ".."
// segment, but for a trailing slash (DescribeTags' route has one): exactly
// the paths ServeMux serves without redirecting.
func canonicalPath(p string) bool {
	rest, ok := strings.CutPrefix(p, "/")
	if !ok {
		return false
	}
	for seg := range strings.SplitSeq(rest, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return !strings.Contains(rest, "//") && !strings.HasPrefix(rest, "/")
}

// wrap turns a handler into an http.Handler: request ID, body, signature,
// principal, then the handler, then the response or error, then the
// access log line (which never carries credentials).
func (s *Server) wrap(op wire.Operation, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := s.reqID()
		w.Header().Set("x-amzn-RequestId", id)
		status, err := s.serve(w, r, op, h)
		if err != nil {
			status = s.writeError(w, id, err)
		}
		d := time.Since(start)
		attrs := []any{"op", op.Name, "status", status, "requestId", id, "duration", d}
		if err != nil {
			attrs = append(attrs, "err", err.Error())
		}
		s.log.Info("request", attrs...)
		if s.observe != nil {
			s.observe(op.Name, status, d)
		}
	})
}

// serve authenticates r, reads its body and runs h. Everything that can be
// refused from the headers (authentication short of the signature, region,
// body size, memory) is refused before a byte of the body is read.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, op wire.Operation, h handler) (int, error) {
	// A request refused with its body unread is answered at once and its
	// connection closed, rather than net/http reading the body first.
	bodyRead := false
	defer func() {
		if !bodyRead && r.ContentLength != 0 {
			w.Header().Set("Connection", "close")
		}
	}()
	pending, err := s.verifier.Begin(r)
	if err != nil {
		return 0, err
	}
	if region := pending.Claimed().Region; !s.svc.Regions().Has(region) {
		return 0, &apiError{code: "UnrecognizedClientException", status: http.StatusForbidden,
			msg: fmt.Sprintf("Region '%s' is not served by this endpoint.", region)}
	}
	body, sum, release, err := s.readBody(w, r)
	if err != nil {
		return 0, err
	}
	bodyRead = true
	defer release()
	ident, err := pending.Finish(sum)
	if err != nil {
		return 0, err
	}
	c := &call{ctx: r.Context(), r: r, body: body,
		p: efs.Principal{Account: s.accounts[ident.AccessKey].Account, Region: ident.Region}}
	out, err := h(c)
	if err != nil {
		return 0, err
	}
	if out == nil || op.SuccessStatus == http.StatusNoContent {
		w.WriteHeader(op.SuccessStatus)
		return op.SuccessStatus, nil
	}
	buf, err := json.Marshal(out)
	if err != nil {
		return 0, fmt.Errorf("encode %s response: %w", op.Name, err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(op.SuccessStatus)
	w.Write(buf)
	return op.SuccessStatus, nil
}

// apiError is an error that is not the domain's: authentication, routing,
// unsupported operations.
type apiError struct {
	code   string
	status int
	msg    string
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

// notImplemented answers operations whose issue has not landed yet with an
// honest error, never a fake success.
func notImplemented(op string) handler {
	return func(*call) (any, error) {
		return nil, &apiError{code: "NotImplemented", status: http.StatusNotImplemented,
			msg: fmt.Sprintf("efsd does not support %s yet.", op)}
	}
}

// writeError renders err in EFS's error format: the modeled status, an
// X-Amzn-ErrorType header and a JSON body with ErrorCode and Message (plus
// the modeled extra members). It returns the status written.
func (s *Server) writeError(w http.ResponseWriter, reqID string, err error) int {
	code, msg, status := string(efs.InternalServerError), "An internal error occurred.", http.StatusInternalServerError
	body := map[string]string{}
	var (
		de  *efs.Error
		ae  *apiError
		se  *sigv4.Error
		ve  *wire.ValidationError
		dce *wire.DecodeError
	)
	switch {
	case errors.As(err, &de):
		code, msg = string(de.Code), de.Message
		if de.FileSystemID != "" {
			body["FileSystemId"] = de.FileSystemID
		}
		if de.AccessPointID != "" {
			body["AccessPointId"] = de.AccessPointID
		}
		if shape, ok := wire.LookupError(code); ok {
			status = shape.Status
		}
		if de.Code == efs.InternalServerError {
			s.log.Error("internal error", "requestId", reqID, "err", err)
			msg = "An internal error occurred."
		}
	case errors.As(err, &ae):
		code, msg, status = ae.code, ae.msg, ae.status
	case errors.As(err, &se):
		code, msg, status = se.Code, se.Message, se.Status
	case errors.As(err, &ve):
		// EFS answers model-constraint failures with ValidationException
		// (it moved from BadRequest); semantic errors stay BadRequest.
		code, msg, status = "ValidationException", ve.Error(), http.StatusBadRequest
	case errors.As(err, &dce):
		code, msg, status = string(efs.BadRequest), dce.Error(), http.StatusBadRequest
	default:
		s.log.Error("internal error", "requestId", reqID, "err", err)
	}
	body["ErrorCode"], body["Message"] = code, msg
	buf, _ := json.Marshal(body)
	w.Header().Set("X-Amzn-ErrorType", code)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(buf)
	return status
}

func randomRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
