package peer

import (
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
