package deploy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var fingerprintRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Fingerprint runs `efsd peer-id --data-dir DIR` on d's data directory,
// which makes the deployment's peer identity if it has none, and returns
// the SHA-256 of its certificate as it prints it (64 lowercase hex).
func Fingerprint(t testing.TB, d *Deployment) string {
	t.Helper()
	return PeerID(t, d)
}

// PeerID runs `efsd peer-id --data-dir DIR` with args (--rotate,
// --promote) on d's data directory and returns the fingerprint it prints.
func PeerID(t testing.TB, d *Deployment, args ...string) string {
	t.Helper()
	// A deployment not yet started has no data directory; making it is
	// efsd's business at first start, not what this helper is about.
	if err := os.MkdirAll(d.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	args = append([]string{"peer-id", "--data-dir", d.DataDir}, args...)
	cmd := exec.CommandContext(ctx, Binary(t), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		// Only the end of stderr: a usage text says nothing the error does not.
		t.Fatalf("%s: efsd %s: %v\n%s%s", d.Name, strings.Join(args, " "), err, stdout.String(), lastLines(stderr.String(), 5))
	}
	fp := strings.TrimSuffix(stdout.String(), "\n")
	if !fingerprintRE.MatchString(fp) {
		t.Fatalf("%s: efsd %s printed %q, want one line of 64 lowercase hex", d.Name, strings.Join(args, " "), stdout.String())
	}
	return fp
}

// Pin sets the fingerprints d pins for its peer named peer: current, and
// next unless empty (the nextCertificateSha256 of a rotation). d reads
// them at its next start.
func Pin(t testing.TB, d *Deployment, peer, current, next string) {
	t.Helper()
	peers, _ := d.file["peers"].([]any)
	for _, p := range peers {
		if m, ok := p.(map[string]any); ok && m["name"] == peer {
			m["certificateSha256"] = current
			delete(m, "nextCertificateSha256")
			if next != "" {
				m["nextCertificateSha256"] = next
			}
			if err := d.writeConfig(); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("deploy: %s has no peer named %q", d.Name, peer)
}

// LinkOptions says how Connect links two deployments.
type LinkOptions struct {
	// Proxy, when set, carries A's traffic to B: A's peer endpoint for B
	// is the proxy (made with NewProxy(t, b.PeerAddr)). B reaches A
	// directly unless Reverse is set (NewProxy(t, a.PeerAddr)).
	Proxy   *Proxy
	Reverse *Proxy
	// AccountsAtB and AccountsAtA fill peers[].accounts of A's entry for
	// B and of B's entry for A; empty leaves the key out (every account).
	AccountsAtB []string
	AccountsAtA []string
}

// Connect makes a and b peers: each listens for peer traffic at its
// PeerAddr and lists the other in peers, with the other's regions and
// pinned certificate fingerprint; A reaches B through o.Proxy if given.
// Both are stopped (SIGTERM) if running, and then started: B first, then
// A. Connecting a deployment to a second peer adds an entry; connecting
// the same pair again replaces theirs. With EFSD_DEPLOY_PEERS=off nothing
// is written and both are only restarted.
func Connect(t testing.TB, a, b *Deployment, o LinkOptions) {
	t.Helper()
	for _, d := range []*Deployment{a, b} {
		if d.Running() {
			d.Stop()
		}
	}
	link(t, a, b, o, Fingerprint(t, a), Fingerprint(t, b))
	b.Restart()
	a.Restart()
}

// link writes the peer keys of a and b into their config files, given
// their fingerprints.
func link(t testing.TB, a, b *Deployment, o LinkOptions, fpA, fpB string) {
	t.Helper()
	if a.Name == b.Name {
		t.Fatalf("deploy: both deployments are named %q; peers need names of their own", a.Name)
	}
	endpointB, endpointA := "https://"+b.PeerAddr, "https://"+a.PeerAddr
	if o.Proxy != nil {
		endpointB = "https://" + o.Proxy.Addr
	}
	if o.Reverse != nil {
		endpointA = "https://" + o.Reverse.Addr
	}
	addPeer(t, a, b, endpointB, fpB, o.AccountsAtB)
	addPeer(t, b, a, endpointA, fpA, o.AccountsAtA)
}

// addPeer sets d's peerListen and adds (or replaces) its entry for peer.
func addPeer(t testing.TB, d, peer *Deployment, endpoint, fp string, accounts []string) {
	t.Helper()
	if len(peer.Regions) == 0 {
		t.Fatalf("deploy: %s serves every region; a peer must name the regions it serves (Config.Regions)", peer.Name)
	}
	entry := map[string]any{"name": peer.Name, "endpoint": endpoint, "regions": peer.Regions, "certificateSha256": fp}
	if len(accounts) > 0 {
		entry["accounts"] = accounts
	}
	var peers []any
	if old, ok := d.file["peers"].([]any); ok {
		for _, p := range old {
			if m, ok := p.(map[string]any); !ok || m["name"] != peer.Name {
				peers = append(peers, p)
			}
		}
	}
	d.file["peerListen"] = d.PeerAddr
	d.file["peers"] = append(peers, entry)
	if err := d.writeConfig(); err != nil {
		t.Fatal(err)
	}
}

// Metric scrapes d's /metrics (adminListen) and returns the sum of every
// sample of the family name (all label sets) and whether there was any.
// A counter nobody has incremented may have no sample yet: absent is 0.
func (d *Deployment) Metric(t testing.TB, name string) (float64, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.AdminAddr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: scrape /metrics: %v", d.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: /metrics answered %s", d.Name, resp.Status)
	}
	v, ok, err := sumMetric(io.LimitReader(resp.Body, 64<<20), name)
	if err != nil {
		t.Fatalf("%s: /metrics: %v", d.Name, err)
	}
	return v, ok
}

// sumMetric sums the samples of family name in Prometheus' text format.
func sumMetric(r io.Reader, name string) (float64, bool, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var sum float64
	found := false
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || line == "" || line[0] == '#' {
			continue
		}
		switch {
		case strings.HasPrefix(rest, "{"):
			end := labelsEnd(rest)
			if end < 0 {
				return 0, false, fmt.Errorf("unterminated labels in %q", line)
			}
			rest = rest[end+1:]
		case strings.HasPrefix(rest, " "):
		default:
			continue // another family whose name starts with name
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return 0, false, fmt.Errorf("no value in %q", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, false, fmt.Errorf("value of %q: %w", line, err)
		}
		sum += v
		found = true
	}
	return sum, found, sc.Err()
}

// labelsEnd is the index of the '}' closing the label set s opens,
// skipping quoted values (which may hold '}' and escaped quotes).
func labelsEnd(s string) int {
	quoted := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == '}':
			return i
		}
	}
	return -1
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
