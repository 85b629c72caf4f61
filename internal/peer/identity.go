package peer

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// Identity is a deployment's TLS key pair: what its peers pin.
type Identity struct {
	Cert tls.Certificate
	// Fingerprint is the SHA-256 of the certificate's DER bytes, in
	// lowercase hex: the value of a peer's certificateSha256.
	Fingerprint string
}

// Identity files, in DATA_DIR/peer.
const (
	certFile = "tls.crt"
	keyFile  = "tls.key"
)

// LoadIdentity reads the deployment's identity from dir, making a new
// self-signed ECDSA P-256 pair first if there is none. The key never leaves
// dir (mode 0600); only the fingerprint is shared with peers.
func LoadIdentity(dir string) (*Identity, error) {
	cp, kp := filepath.Join(dir, certFile), filepath.Join(dir, keyFile)
	if _, err := os.Stat(cp); errors.Is(err, os.ErrNotExist) {
		if err := makeIdentity(dir, cp, kp); err != nil {
			return nil, err
		}
	}
	cert, err := tls.LoadX509KeyPair(cp, kp)
	if err != nil {
		return nil, fmt.Errorf("load peer identity: %w", err)
	}
	return &Identity{Cert: cert, Fingerprint: Fingerprint(cert.Certificate[0])}, nil
}

// Rotation: a new identity is made beside the one presented
// (DATA_DIR/peer/next), pinned at the peers as their
// nextCertificateSha256, then promoted; the old one is kept in
// DATA_DIR/peer/previous until the next promotion.
const (
	nextDir     = "next"
	previousDir = "previous"
)

// NextIdentity returns the identity that PromoteIdentity would make
// current, making it first if there is none.
func NextIdentity(dir string) (*Identity, error) {
	return LoadIdentity(filepath.Join(dir, nextDir))
}

// PromoteIdentity makes the next identity the one presented (from the
// next start on) and keeps the current one as the previous. The next
// pair is copied over the current one, the key before the certificate,
// each through a temporary renamed into place, and removed last:
// interrupted, the current pair does not load (its key is not its
// certificate's) and running PromoteIdentity again completes it.
func PromoteIdentity(dir string) (*Identity, error) {
	nd := filepath.Join(dir, nextDir)
	next, err := tls.LoadX509KeyPair(filepath.Join(nd, certFile), filepath.Join(nd, keyFile))
	if err != nil {
		return nil, fmt.Errorf("promote peer identity: no next identity (efsd peer-id --rotate makes one): %w", err)
	}
	cp, kp := filepath.Join(dir, certFile), filepath.Join(dir, keyFile)
	if cur, err := tls.LoadX509KeyPair(cp, kp); err == nil && !bytes.Equal(cur.Certificate[0], next.Certificate[0]) {
		pd := filepath.Join(dir, previousDir)
		if err := os.MkdirAll(pd, 0o700); err != nil {
			return nil, fmt.Errorf("promote peer identity: %w", err)
		}
		if err := copyPair(dir, pd); err != nil {
			return nil, fmt.Errorf("promote peer identity: keep the previous: %w", err)
		}
	}
	if err := copyPair(nd, dir); err != nil {
		return nil, fmt.Errorf("promote peer identity: %w", err)
	}
	if err := os.RemoveAll(nd); err != nil {
		return nil, fmt.Errorf("promote peer identity: %w", err)
	}
	return LoadIdentity(dir)
}

// copyPair copies the key, then the certificate, from one identity
// directory to another.
func copyPair(from, to string) error {
	for _, f := range []struct {
		name string
		mode os.FileMode
	}{{keyFile, 0o600}, {certFile, 0o644}} {
		b, err := os.ReadFile(filepath.Join(from, f.name))
		if err == nil {
			err = writeFile(filepath.Join(to, f.name), b, f.mode)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Fingerprint is the pin of a DER certificate.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// makeIdentity writes a new pair: the key first, the certificate last, each
// through a temporary renamed into place, so a crash never leaves a
// certificate without its key.
func makeIdentity(dir, cp, kp string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("make peer identity: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("make peer identity: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return fmt.Errorf("make peer identity: %w", err)
	}
	host, _ := os.Hostname()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "efsd peer " + host},
		NotBefore:    now.Add(-time.Hour),
		// Peers pin the certificate itself, not a chain, so its validity
		// period is not what protects them; replacing it means re-pinning.
		NotAfter:    now.AddDate(100, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("make peer identity: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("make peer identity: %w", err)
	}
	if err := writeFile(kp, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	return writeFile(cp, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func writeFile(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
