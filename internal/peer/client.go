package peer

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/efsd/efsd/internal/efs"
	"github.com/efsd/efsd/internal/remotesync"
)

// Client reaches the configured peers; it implements efs.Peers and hands
// the replication engine a remotesync.Transport per configuration. It only
// ever dials the endpoints of the configuration, and completes a TLS
// handshake only with the pinned certificate there.
type Client struct {
	set   *Set
	log   *slog.Logger
	https map[string]*http.Client // by peer name
}

// NewClient returns a Client presenting id to the peers of set.
func NewClient(id *Identity, set *Set, log *slog.Logger) *Client {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{set: set, log: log, https: map[string]*http.Client{}}
	for _, p := range set.peers {
		tr := &http.Transport{
			TLSClientConfig: &tls.Config{
				MinVersion:   tls.VersionTLS13,
				Certificates: []tls.Certificate{id.Cert},
				NextProtos:   []string{"h2"},
				// The peer's self-signed certificate is checked by its pin,
				// not by a chain or a name.
				InsecureSkipVerify: true,
				VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
					if len(raw) == 0 || !p.pins(Fingerprint(raw[0])) {
						return fmt.Errorf("peer %s presented a certificate other than the pinned ones", p.Name)
					}
					return nil
				},
			},
			ForceAttemptHTTP2:   true,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 15 * time.Second}).DialContext,
			TLSHandshakeTimeout: 10 * time.Second,
			IdleConnTimeout:     time.Minute,
			// A peer behind a partition that drops packets is noticed by
			// unanswered pings, not by waiting for TCP to give up.
			HTTP2: &http.HTTP2Config{SendPingTimeout: 10 * time.Second, PingTimeout: 10 * time.Second},
		}
		c.https[p.Name] = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
	}
	return c
}

// Route names the peer serving account's file systems in region.
func (c *Client) Route(account, region string) (string, bool) { return c.set.Route(account, region) }

// CreateDestination asks the peer to create or claim a destination.
func (c *Client) CreateDestination(ctx context.Context, peer string, req *efs.RemoteCreate) (*efs.RemoteDestination, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	rc, err := c.post(ctx, peer, "/erp/v1/replications", bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var out efs.RemoteDestination
	if err := json.NewDecoder(io.LimitReader(rc, maxControlBody)).Decode(&out); err != nil {
		return nil, fmt.Errorf("%w: %s: decode answer: %w", efs.ErrPeerUnreachable, peer, err)
	}
	return &out, nil
}

// Tell delivers an event about configuration id to the peer.
func (c *Client) Tell(ctx context.Context, peer, id, event string) error {
	b, _ := json.Marshal(eventBody{Event: event})
	rc, err := c.post(ctx, peer, "/erp/v1/replications/"+url.PathEscape(id)+"/events", bytes.NewReader(b))
	if err != nil {
		return err
	}
	return rc.Close()
}

// Query asks the peer whether it recorded configuration id, whose
// destination is here: efs.PeerRecorded, efs.PeerPending or
// efs.PeerUnknown.
func (c *Client) Query(ctx context.Context, peer, id string) (string, error) {
	rc, err := c.post(ctx, peer, "/erp/v1/replications/"+url.PathEscape(id)+"/query", http.NoBody)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	var out queryBody
	if err := json.NewDecoder(io.LimitReader(rc, maxControlBody)).Decode(&out); err != nil {
		return "", fmt.Errorf("%w: %s: decode answer: %w", efs.ErrPeerUnreachable, peer, err)
	}
	switch out.State {
	case efs.PeerRecorded, efs.PeerPending, efs.PeerUnknown:
		return out.State, nil
	}
	return "", fmt.Errorf("peer %s answered an unknown state %q", peer, out.State)
}

// Transport carries configuration id's transfer to the peer.
func (c *Client) Transport(peer, id string) remotesync.Transport {
	return &transport{c: c, peer: peer, path: "/erp/v1/replications/" + url.PathEscape(id) + "/sync/"}
}

type transport struct {
	c          *Client
	peer, path string
}

func (t *transport) RoundTrip(ctx context.Context, op string, body io.Reader) (io.ReadCloser, error) {
	return t.c.post(ctx, t.peer, t.path+op, body)
}

// post sends one request to a configured peer. Failing to reach it wraps
// efs.ErrPeerUnreachable; its refusals come back as *efs.Error or
// *remotesync.RemoteError.
func (c *Client) post(ctx context.Context, peer, path string, body io.Reader) (io.ReadCloser, error) {
	p, ok := c.set.byName(peer)
	hc := c.https[peer]
	if !ok || hc == nil {
		return nil, fmt.Errorf("%w: no peer named %q is configured", efs.ErrPeerUnreachable, peer)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(p.Endpoint, "/")+path, body)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s (%s): %w", efs.ErrPeerUnreachable, peer, p.Endpoint, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp.Body, nil
	}
	defer resp.Body.Close()
	var e errorBody
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxControlBody)).Decode(&e); err != nil || e.Code == "" {
		return nil, fmt.Errorf("%w: %s answered %s", efs.ErrPeerUnreachable, peer, resp.Status)
	}
	switch e.Kind {
	case kindEFS:
		return nil, &efs.Error{Code: efs.Code(e.Code), Message: e.Message}
	case kindSync:
		return nil, &remotesync.RemoteError{Code: e.Code, Message: e.Message}
	}
	return nil, fmt.Errorf("peer %s refused the request: %s: %s", peer, e.Code, e.Message)
}
