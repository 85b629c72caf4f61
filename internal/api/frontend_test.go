package api_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/efsd/efsd/internal/api"
	"github.com/efsd/efsd/internal/api/wire"
	"github.com/efsd/efsd/internal/efstest"
)

// awsShaped checks resp is a 4xx in EFS's error format and returns its code.
func awsShaped(t *testing.T, what string, resp *http.Response) string {
	t.Helper()
	body := efstest.ReadBody(t, resp)
	if resp.StatusCode < 400 || resp.StatusCode > 499 {
		t.Fatalf("%s: status %d, want 4xx (Location %q, body %q)", what, resp.StatusCode, resp.Header.Get("Location"), body)
	}
	code := resp.Header.Get("X-Amzn-ErrorType")
	if code == "" || resp.Header.Get("x-amzn-RequestId") == "" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s: %d without AWS error headers: %v %q", what, resp.StatusCode, resp.Header, body)
	}
	if resp.Request.Method == http.MethodHead {
		return code
	}
	var e struct{ ErrorCode, Message string }
	if err := json.Unmarshal(body, &e); err != nil || e.ErrorCode != code || e.Message == "" {
		t.Fatalf("%s: error body %q (%v)", what, body, err)
	}
	return code
}

// pathVariants returns, for a route template, paths that are not canonical
// (empty, "." and ".." labels and segments, doubled slashes), each of
// which must be answered in AWS's error format, never redirected.
func pathVariants(uri string) []string {
	fill := func(with string) string {
		var b strings.Builder
		for rest := uri; ; {
			i := strings.IndexByte(rest, '{')
			if i < 0 {
				b.WriteString(rest)
				return b.String()
			}
			j := strings.IndexByte(rest, '}')
			b.WriteString(rest[:i] + with)
			rest = rest[j+1:]
		}
	}
	valid := fill("fs-0123456789abcdef0")
	var out []string
	if strings.Contains(uri, "{") {
		out = append(out, fill(""), fill("."), fill(".."), fill("%2e%2e"))
	}
	for i := 0; i < len(valid); i++ {
		if valid[i] == '/' {
			out = append(out, valid[:i]+"/"+valid[i:], valid[:i]+"/."+valid[i:], valid[:i]+"/x/.."+valid[i:])
		}
	}
	return append(out, valid+"/.", valid+"/..", valid+"//", "/"+valid)
}

// Paths with empty, "." or ".." segments answered 307 redirects before
// authentication, without AWS's error format, because ServeMux cleans
// paths. Every path and method now gets an AWS-shaped 4xx.
func TestEveryPathAnswersAWSShaped(t *testing.T) {
	srv := efstest.Start(t)
	a := efstest.AccountA
	seen := map[string]bool{}
	routes := map[string]bool{}
	for _, op := range wire.Operations {
		routes[op.Method+" "+op.URI] = true
	}
	for _, op := range wire.Operations {
		for _, p := range pathVariants(op.URI) {
			if seen[op.Method+p] {
				continue
			}
			seen[op.Method+p] = true
			req, err := http.NewRequest(op.Method, srv.URL+p, nil)
			if err != nil {
				t.Fatal(err)
			}
			if code := awsShaped(t, "unsigned "+op.Method+" "+p, srv.Do(req)); code != "MissingAuthenticationTokenException" {
				t.Fatalf("unsigned %s %s: %s, want MissingAuthenticationTokenException", op.Method, p, code)
			}
			awsShaped(t, "signed "+op.Method+" "+p, srv.Raw(a, region, op.Method, p, nil))
		}
		// Every other method on the route: another operation or 404, never
		// net/http's 405.
		valid := strings.NewReplacer("{FileSystemId}", "fs-0123456789abcdef0", "{SourceFileSystemId}", "fs-0123456789abcdef0",
			"{ResourceId}", "fs-0123456789abcdef0", "{MountTargetId}", "fsmt-0123456789abcdef0",
			"{AccessPointId}", "fsap-0123456789abcdef0").Replace(op.URI)
		for _, m := range []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
			// HEAD runs the GET operation of the route, as net/http does.
			if routes[m+" "+op.URI] || m == "HEAD" && routes["GET "+op.URI] || seen[m+valid] {
				continue
			}
			seen[m+valid] = true
			awsShaped(t, "signed "+m+" "+valid, srv.Raw(a, region, m, valid, nil))
		}
	}

	// What ServeMux would have cleaned still signs as the SDK sent it.
	if code := awsShaped(t, "empty label", srv.Raw(a, region, "POST", "/2015-02-01/file-systems//replication-configuration",
		[]byte(`{"Destinations":[{"Region":"us-east-1"}]}`))); code != "UnknownOperationException" {
		t.Fatalf("empty label answered %s", code)
	}
	// Request targets ServeMux never sees as a path: "*" and CONNECT's
	// authority form.
	for _, raw := range []string{
		"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
		"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
	} {
		resp := rawExchange(t, srv.Addr(), "", raw, 5*time.Second)
		awsShaped(t, raw, resp)
	}
}

// rawExchange writes raw bytes on a new connection (from local address
// from, "" for any) and reads one response within timeout.
func rawExchange(t *testing.T, addr, from, raw string, timeout time.Duration) *http.Response {
	t.Helper()
	conn := dialFrom(t, addr, from)
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatalf("write: %v", err)
	}
	req, _ := http.NewRequest(strings.Fields(raw)[0], "/", nil)
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatalf("no answer within %v to %.60q: %v", timeout, raw, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	return resp
}

func dialFrom(t *testing.T, addr, from string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %q: %v", addr, from, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// uploadHeaders returns the request line and headers of a POST announcing a
// body of length bytes, signed as cred in reg for the payload hash (a
// made-up one when hash is ""), sent in X-Amz-Content-Sha256 when claim;
// the body is not included.
func uploadHeaders(t *testing.T, cred api.Credential, reg string, length int, hash string, claim bool, at time.Time) string {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://efsd/2015-02-01/file-systems", nil)
	if hash == "" {
		sum := sha256.Sum256([]byte("not the body"))
		hash = hex.EncodeToString(sum[:])
	}
	if claim {
		req.Header.Set("X-Amz-Content-Sha256", hash)
	}
	err := v4.NewSigner().SignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: cred.AccessKeyID, SecretAccessKey: cred.SecretAccessKey},
		req, hash, "elasticfilesystem", reg, at)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "POST /2015-02-01/file-systems HTTP/1.1\r\nHost: efsd\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", length)
	for k, vs := range req.Header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	return b.String() + "\r\n"
}

// The body was read before the signature's headers were checked: a client
// announcing a body and never sending it held the server until it gave up.
// Whatever the headers decide is now answered at once.
func TestRefusedBeforeTheBody(t *testing.T) {
	srv := efstest.Start(t)
	now := time.Now()
	unknown := api.Credential{AccessKeyID: "AKIAUNKNOWN000000000", SecretAccessKey: "x"}
	claim := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name, raw, code string
	}{
		{"unsigned", "POST /2015-02-01/file-systems HTTP/1.1\r\nHost: efsd\r\nContent-Length: 1000000\r\n\r\n", "MissingAuthenticationTokenException"},
		{"unknown key", uploadHeaders(t, unknown, region, 1000000, "", false, now), "UnrecognizedClientException"},
		{"stale date", uploadHeaders(t, efstest.AccountA, region, 1000000, "", false, now.Add(-time.Hour)), "InvalidSignatureException"},
		{"region not served", uploadHeaders(t, efstest.AccountA, "xx-nowhere-1", 1000000, "", false, now), "UnrecognizedClientException"},
		{"body over the cap", uploadHeaders(t, efstest.AccountA, region, 2<<20, "", false, now), "BadRequest"},
		{"claimed hash, wrong signature", strings.Replace(uploadHeaders(t, efstest.AccountA, region, 1000, claim, true, now),
			"X-Amz-Content-Sha256: "+claim, "X-Amz-Content-Sha256: "+strings.Repeat("cd", 32), 1), "InvalidSignatureException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := rawExchange(t, srv.Addr(), "", tc.raw, 3*time.Second)
			if code := awsShaped(t, tc.name, resp); code != tc.code {
				t.Fatalf("answered %s, want %s", code, tc.code)
			}
		})
	}
}

// A chunked body has no announced length: it is read up to the cap and
// refused past it, and one within the cap is served. A claimed payload
// hash is held against the body.
func TestBodies(t *testing.T) {
	srv := efstest.Start(t)
	chunked := func(body string) string {
		sum := sha256.Sum256([]byte(body))
		head := uploadHeaders(t, efstest.AccountA, region, 0, hex.EncodeToString(sum[:]), false, time.Now())
		head = strings.Replace(head, "Content-Length: 0\r\n", "Transfer-Encoding: chunked\r\n", 1)
		return head + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body)
	}
	resp := rawExchange(t, srv.Addr(), "", chunked(strings.Repeat(" ", 1<<20+1)), 10*time.Second)
	if code := awsShaped(t, "chunked over the cap", resp); code != "BadRequest" {
		t.Fatalf("chunked over the cap: %s", code)
	}
	resp = rawExchange(t, srv.Addr(), "", chunked(`{"CreationToken":"c"}`), 10*time.Second)
	if body := efstest.ReadBody(t, resp); resp.StatusCode != 201 || !strings.Contains(string(body), `"CreationToken":"c"`) {
		t.Fatalf("chunked: %d %s", resp.StatusCode, body)
	}
	// With the payload hash claimed, the signature is checked before the
	// body and the body against the claim.
	body := `{"CreationToken":"claimed"}`
	sum := sha256.Sum256([]byte(body))
	head := uploadHeaders(t, efstest.AccountA, region, len(body), hex.EncodeToString(sum[:]), true, time.Now())
	resp = rawExchange(t, srv.Addr(), "", head+body, 10*time.Second)
	if b := efstest.ReadBody(t, resp); resp.StatusCode != 201 {
		t.Fatalf("claimed hash: %d %s", resp.StatusCode, b)
	}
	resp = rawExchange(t, srv.Addr(), "", head+strings.Replace(body, "claimed", "claimex", 1), 10*time.Second)
	if code := awsShaped(t, "body not matching the claim", resp); code != "InvalidSignatureException" {
		t.Fatalf("body not matching the claim: %s", code)
	}
}
