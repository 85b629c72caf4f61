// Package efstest starts in-process efsd daemons on loopback and hands out
// real aws-sdk-go-v2 EFS and EC2 clients and raw signed HTTP clients for them.
package efstest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/smithy-go/middleware"

	"github.com/efsd/efsd/internal/api"
	"github.com/efsd/efsd/internal/daemon"
	"github.com/efsd/efsd/internal/efstest/ports"
	"github.com/efsd/efsd/internal/sdkhttp"
)

// Accounts the harness configures: two, to test isolation.
var (
	AccountA = api.Credential{AccessKeyID: "AKIAEFSDTESTA0000001", SecretAccessKey: "secret-a", Account: "111111111111"}
	AccountB = api.Credential{AccessKeyID: "AKIAEFSDTESTB0000002", SecretAccessKey: "secret-b", Account: "222222222222"}
)

// Server is an in-process efsd.
type Server struct {
	*daemon.Daemon
	URL     string
	DataDir string
	cfg     daemon.Config
	t       testing.TB
}

// Option changes a test daemon's config.
type Option func(*daemon.Config)

// WithConfig lets a test set any daemon setting.
func WithConfig(fn func(*daemon.Config)) Option { return Option(fn) }

// Start starts a daemon with a fresh data directory; it is closed when the
// test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	cfg := daemon.Config{
		Listen:          "127.0.0.1:0",
		DataDir:         t.TempDir(),
		Credentials:     []api.Credential{AccountA, AccountB},
		TransitionDelay: 50 * time.Millisecond,
		MeterInterval:   100 * time.Millisecond,
		// Servers of parallel test processes share loopback addresses;
		// a port of their own keeps their mount targets apart.
		NFSPort: ports.Free(t),
	}
	if os.Getenv("EFSD_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	for _, o := range opts {
		o(&cfg)
	}
	s := &Server{cfg: cfg, DataDir: cfg.DataDir, t: t}
	s.start()
	t.Cleanup(func() {
		if s.Daemon != nil {
			s.Daemon.Close()
		}
	})
	return s
}

func (s *Server) start() {
	s.t.Helper()
	d, err := daemon.Start(context.Background(), s.cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	s.Daemon = d
	s.URL = "http://" + d.Addr()
	s.cfg.Listen = d.Addr() // keep the port across restarts
}

// Restart closes the daemon and starts it again on the same data
// directory and address.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.Daemon.Close(); err != nil {
		s.t.Fatal(err)
	}
	s.start()
}

// Client returns an EFS client signing as cred in region. SDK retries are
// off so tests see every error.
func (s *Server) Client(cred api.Credential, region string) *efs.Client {
	return NewClient(s.URL, cred, region)
}

// NewClient returns an EFS client for the efsd at url (an in-process one,
// a separate process, or a proxy in front of either) signing as cred in
// region. SDK retries are off so tests see every error; opts may turn them
// back on or change anything else.
func NewClient(url string, cred api.Credential, region string, opts ...func(*efs.Options)) *efs.Client {
	return efs.New(efs.Options{
		BaseEndpoint: aws.String(url),
		Region:       region,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: cred.AccessKeyID, SecretAccessKey: cred.SecretAccessKey}, nil
		}),
		RetryMaxAttempts: 1,
		HTTPClient:       sdkhttp.New(),
	}, opts...)
}

// EC2Client returns an EC2 client for the same endpoint, signing as cred
// in region (service "ec2"); SDK retries are off.
func (s *Server) EC2Client(cred api.Credential, region string) *ec2.Client {
	return ec2.New(ec2.Options{
		BaseEndpoint: aws.String(s.URL),
		Region:       region,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: cred.AccessKeyID, SecretAccessKey: cred.SecretAccessKey}, nil
		}),
		RetryMaxAttempts: 1,
		HTTPClient:       sdkhttp.New(),
	})
}

// UnvalidatedClient is Client without the SDK's own input validation, so
// invalid input reaches the server.
func (s *Server) UnvalidatedClient(cred api.Credential, region string) *efs.Client {
	c := s.Client(cred, region)
	return efs.New(c.Options(), func(o *efs.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			// Operations without required members have no validator.
			st.Initialize.Remove("OperationInputValidation")
			return nil
		})
	})
}

// Raw sends a request signed with SigV4 as cred in region, with whatever
// path, query and body the test gives, and returns the response.
func (s *Server) Raw(cred api.Credential, region, method, path string, body []byte) *http.Response {
	s.t.Helper()
	return s.Do(SignedRequest(s.t, s.URL, cred, region, method, path, body))
}

// SignedRequest builds a request to url+path signed with SigV4 as cred in
// region, with whatever path, query and body the test gives.
func SignedRequest(t testing.TB, url string, cred api.Credential, region, method, path string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	sum := sha256.Sum256(body)
	err = v4.NewSigner().SignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: cred.AccessKeyID, SecretAccessKey: cred.SecretAccessKey},
		req, hex.EncodeToString(sum[:]), "elasticfilesystem", region, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// Do sends req as it is and returns the response; redirects are not
// followed, so a test sees exactly what the server answered.
func (s *Server) Do(req *http.Request) *http.Response {
	s.t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	return resp
}

// ReadBody reads and closes a response body.
func ReadBody(t testing.TB, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Eventually polls cond every 20ms until it returns true or the deadline
// passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
