// Package peer links efsd deployments that serve different regions, so
// that a replication configuration can have its source on one and its
// destination on another: each deployment's TLS identity, the peer
// endpoint (server.go) and the client that reaches configured peers
// (client.go).
//
// Trust: peers authenticate each other by mutual TLS 1.3 with pinned
// certificates (the SHA-256 of each peer's self-signed certificate is in
// the other's configuration, as Syncthing pins device IDs). No secret is
// shared or configured: only public fingerprints are exchanged, and a
// stolen configuration file lets nobody in. A deployment accepts requests
// only from a configured peer's certificate, only about configurations
// shared with that peer, only into the destination the configuration
// names; it dials only configured endpoints. Which account may replicate
// into which file system is decided by the destination's file system
// policy, as for every cross-account replication.
package peer

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
)

// Config names one peer deployment.
type Config struct {
	Name string
	// Endpoint is the peer's peerListen address as https://host:port.
	Endpoint string
	// Regions the peer serves; Accounts, when set, limits them to those
	// accounts' file systems.
	Regions  []string
	Accounts []string
	// CertSHA256 is the pinned fingerprint of the peer's certificate.
	CertSHA256 string
	// NextCertSHA256, when set, is pinned too: the identity the peer will
	// present after a rotation (`efsd peer-id --rotate` there prints it),
	// accepted beside the current one until the rotation is done.
	NextCertSHA256 string
}

// pins says whether fp is one of the peer's pinned fingerprints.
func (c Config) pins(fp string) bool {
	return fp == c.CertSHA256 || c.NextCertSHA256 != "" && fp == c.NextCertSHA256
}

var (
	peerName    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	fingerprint = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Check reports what is wrong with a peer's configuration.
func (c Config) Check() error {
	if !peerName.MatchString(c.Name) {
		return fmt.Errorf("peer name %q: 1 to 63 letters, digits, '.', '_' or '-'", c.Name)
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("peer %s: endpoint %q must be https://host:port", c.Name, c.Endpoint)
	}
	if len(c.Regions) == 0 {
		return fmt.Errorf("peer %s: no regions", c.Name)
	}
	if !fingerprint.MatchString(c.CertSHA256) {
		return fmt.Errorf("peer %s: certificateSha256 must be 64 lowercase hex digits (efsd peer-id prints it)", c.Name)
	}
	if c.NextCertSHA256 != "" && (!fingerprint.MatchString(c.NextCertSHA256) || c.NextCertSHA256 == c.CertSHA256) {
		return fmt.Errorf("peer %s: nextCertificateSha256 must be 64 lowercase hex digits other than certificateSha256 (efsd peer-id --rotate prints it)", c.Name)
	}
	return nil
}

// Set is the peers of this deployment.
type Set struct {
	peers []Config
}

// NewSet checks the peers: names and fingerprints unique, no region served
// by two peers for the same account, none served here (local).
func NewSet(peers []Config, local func(region string) bool) (*Set, error) {
	names, prints := map[string]bool{}, map[string]bool{}
	for i, p := range peers {
		if err := p.Check(); err != nil {
			return nil, err
		}
		if names[p.Name] || prints[p.CertSHA256] || prints[p.NextCertSHA256] {
			return nil, fmt.Errorf("peer %s: name or certificate fingerprint used twice", p.Name)
		}
		names[p.Name], prints[p.CertSHA256] = true, true
		if p.NextCertSHA256 != "" {
			prints[p.NextCertSHA256] = true
		}
		for _, r := range p.Regions {
			if local(r) {
				return nil, fmt.Errorf("peer %s: region %s is served by this deployment", p.Name, r)
			}
			for _, q := range peers[:i] {
				if slices.Contains(q.Regions, r) && overlap(p.Accounts, q.Accounts) {
					return nil, fmt.Errorf("peers %s and %s both serve region %s", q.Name, p.Name, r)
				}
			}
		}
	}
	return &Set{peers: peers}, nil
}

// overlap: two account lists (empty = every account) share an account.
func overlap(a, b []string) bool {
	if len(a) == 0 || len(b) == 0 {
		return true
	}
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// Route names the peer serving account's file systems in region.
func (s *Set) Route(account, region string) (string, bool) {
	for _, p := range s.peers {
		if slices.Contains(p.Regions, region) && (len(p.Accounts) == 0 || slices.Contains(p.Accounts, account)) {
			return p.Name, true
		}
	}
	return "", false
}

// byName finds a peer.
func (s *Set) byName(name string) (Config, bool) {
	for _, p := range s.peers {
		if p.Name == name {
			return p, true
		}
	}
	return Config{}, false
}

// byFingerprint finds the peer presenting a certificate.
func (s *Set) byFingerprint(fp string) (Config, bool) {
	for _, p := range s.peers {
		if p.pins(fp) {
			return p, true
		}
	}
	return Config{}, false
}
