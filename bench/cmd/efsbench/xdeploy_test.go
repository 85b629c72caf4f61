package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestRsyncOwnCount(t *testing.T) {
	out := `
Number of files: 1,011 (reg: 1,000, dir: 11)
Total file size: 4,096,000 bytes
Total bytes sent: 4,171,654
Total bytes received: 19,230

sent 4,171,654 bytes  received 19,230 bytes  2,794,922.67 bytes/sec
`
	n, err := rsyncOwnCount(out)
	if err != nil || n != 4_171_654+19_230 {
		t.Fatalf("rsyncOwnCount = %d, %v; want %d", n, err, 4_171_654+19_230)
	}
	if _, err := rsyncOwnCount("sent 1 bytes  received 2 bytes"); err == nil {
		t.Fatal("output without --stats totals accepted")
	}
}

// The deployments' config files have the keys of issue #10's contract and
// nothing else efsd would refuse.
func TestXdConfigKeys(t *testing.T) {
	b, err := json.Marshal(xdConfig{Regions: []string{regionA}, PeerListen: "127.0.0.1:1",
		Peers: []xdPeer{{Name: "b", Endpoint: "https://127.0.0.1:2", Regions: []string{regionB}, CertificateSha256: strings.Repeat("a", 64)}}})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if len(m) != 3 || m["peerListen"] != "127.0.0.1:1" || m["regions"] == nil {
		t.Errorf("config %s", b)
	}
	peer := m["peers"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "endpoint", "regions", "certificateSha256"} {
		if _, ok := peer[k]; !ok {
			t.Errorf("peer lacks %q: %s", k, b)
		}
	}
}
