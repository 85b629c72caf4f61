package crossdeploy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/efsd/efsd/internal/efstest/deploy"
)

// TestPeerListenerPinsCertificates: `efsd peer-id` prints one stable
// fingerprint per data directory, that of the certificate in
// DATA_DIR/peer (ECDSA P-256, key readable by its owner only), which the
// peer listener presents; the listener speaks TLS 1.3 only and serves a
// client only if it presents a pinned certificate: not without one, not
// with another self-signed one, not over TLS 1.2.
func TestPeerListenerPinsCertificates(t *testing.T) {
	t.Parallel()
	p := newPair(t, false)
	fa, fb := deploy.Fingerprint(t, p.a), deploy.Fingerprint(t, p.b)
	if fa == fb {
		t.Fatalf("two data directories, one fingerprint %s", fa)
	}
	if again := deploy.Fingerprint(t, p.a); again != fa {
		t.Fatalf("peer-id printed %s, then %s", fa, again)
	}
	dir := filepath.Join(p.a.DataDir, "peer")
	idA, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatalf("a's peer identity: %v", err)
	}
	if got := fingerprint(idA.Certificate[0]); got != fa {
		t.Fatalf("DATA_DIR/peer/tls.crt has fingerprint %s, peer-id printed %s", got, fa)
	}
	if k, ok := idA.PrivateKey.(*ecdsa.PrivateKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("a's peer key is %T, want ECDSA P-256", idA.PrivateKey)
	}
	if st, err := os.Stat(filepath.Join(dir, "tls.key")); err != nil {
		t.Error(err)
	} else if st.Mode().Perm()&0o077 != 0 {
		t.Errorf("a's peer key has mode %v: want no access for group and others", st.Mode())
	}

	stranger := selfSigned(t)
	for _, c := range []struct {
		name   string
		certs  []tls.Certificate
		maxVer uint16
		ok     bool
	}{
		{"no client certificate", nil, 0, false},
		{"an unpinned self-signed certificate", []tls.Certificate{stranger}, 0, false},
		{"a's certificate over TLS 1.2", []tls.Certificate{idA}, tls.VersionTLS12, false},
		{"a's certificate", []tls.Certificate{idA}, 0, true},
	} {
		var seen string
		tr := &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{
			Certificates: c.certs, MaxVersion: c.maxVer,
			// The server is pinned as a peer pins it: by fingerprint.
			InsecureSkipVerify: true,
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
				seen = fingerprint(raw[0])
				if seen != fb {
					return fmt.Errorf("b presented %s, want %s", seen, fb)
				}
				return nil
			},
		}}
		cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		resp, err := cl.Get("https://" + p.b.PeerAddr + "/erp/v1/")
		if err == nil {
			resp.Body.Close()
		}
		tr.CloseIdleConnections()
		switch {
		case c.ok && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.ok && resp.ProtoMajor != 2:
			t.Errorf("%s: answered over %s, want HTTP/2", c.name, resp.Proto)
		case !c.ok && err == nil:
			t.Errorf("%s: served (%s)", c.name, resp.Status)
		default:
			t.Logf("%s: %v", c.name, errOrStatus(resp, err))
		}
	}
	if !p.a.Running() || !p.b.Running() {
		t.Fatal("a deployment stopped")
	}
}

func errOrStatus(resp *http.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return resp.Proto + " " + resp.Status
}

func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// selfSigned makes a throwaway ECDSA P-256 identity nobody has pinned.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestPeerIdentityRotation: A replaces its peer identity and no change is
// lost: B pins A's next identity beside the current one, A promotes it and
// restarts, B drops the old pin; replication goes on after each step, and
// at the end B's peer listener refuses A's old certificate and serves its
// new one.
func TestPeerIdentityRotation(t *testing.T) {
	t.Parallel()
	p := newPair(t, false)
	_, dstID, srcDir, dstDir := p.replicated(t, "rotate-src", 5, 6)

	old := deploy.Fingerprint(t, p.a)
	next := deploy.PeerID(t, p.a, "--rotate")
	if next == old || deploy.PeerID(t, p.a, "--rotate") != next || deploy.Fingerprint(t, p.a) != old {
		t.Fatalf("rotate: current %s, next %s: want a new next identity, made once, the current one unchanged", old, next)
	}
	for i, step := range []struct {
		name string
		do   func()
	}{
		{"B pins A's next identity too", func() {
			p.b.Stop()
			deploy.Pin(t, p.b, "a", old, next)
			p.b.Restart()
		}},
		{"A presents its next identity", func() {
			p.a.Stop()
			if got := deploy.PeerID(t, p.a, "--promote"); got != next {
				t.Fatalf("promote printed %s, want %s", got, next)
			}
			p.a.Restart()
		}},
		{"B pins only A's new identity", func() {
			p.b.Stop()
			deploy.Pin(t, p.b, "a", next, "")
			p.b.Restart()
		}},
	} {
		step.do()
		change(t, srcDir, i)
		start := time.Now()
		converge(t, p.cb, dstID, srcDir, dstDir, start, 60*time.Second)
		t.Logf("%s: replicated again in %v", step.name, time.Since(start).Round(time.Millisecond))
	}

	dir := filepath.Join(p.a.DataDir, "peer")
	for _, c := range []struct {
		name string
		dir  string
		ok   bool
	}{{"A's previous certificate", filepath.Join(dir, "previous"), false}, {"A's current certificate", dir, true}} {
		id, err := tls.LoadX509KeyPair(filepath.Join(c.dir, "tls.crt"), filepath.Join(c.dir, "tls.key"))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		tr := &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{id}, InsecureSkipVerify: true}}
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + p.b.PeerAddr + "/erp/v1/")
		if err == nil {
			resp.Body.Close()
		}
		tr.CloseIdleConnections()
		if (err == nil) != c.ok {
			t.Errorf("%s at B's peer listener: %s", c.name, errOrStatus(resp, err))
		}
	}
}
