package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/efsd/efsd/internal/replication"
	"github.com/efsd/efsd/internal/treesync"
)

type fakeScrubber struct{ target chan string }

func (f *fakeScrubber) Scrub(ctx context.Context, target string, every time.Duration, progress func(replication.ScrubProgress)) ([]replication.ScrubProgress, error) {
	f.target <- target
	if target == "missing" {
		return nil, errors.New("no running replication configuration: missing")
	}
	p := replication.ScrubProgress{Replication: "rep-1", Source: "fs-1", Destination: "fs-2", Stats: treesync.Stats{FilesCompared: 3, BytesCompared: 60, BytesCopied: 10, Differences: 1, FilesCopied: 1}}
	progress(p)
	p.Done = true
	progress(p)
	return []replication.ScrubProgress{p}, nil
}

func start(t *testing.T) (string, *fakeScrubber) {
	t.Helper()
	dir := t.TempDir()
	f := &fakeScrubber{target: make(chan string, 10)}
	srv, err := Listen(dir, f, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return dir, f
}

func TestSocketIsPrivate(t *testing.T) {
	dir, _ := start(t)
	fi, err := os.Stat(SocketPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	di, _ := os.Stat(dir + "/admin")
	if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Fatalf("socket %v, directory %v", fi.Mode(), di.Mode())
	}
}

func TestScrubThroughSocket(t *testing.T) {
	dir, f := start(t)
	var got []Message
	if err := Scrub(context.Background(), dir, "fs-1", time.Second, func(m Message) { got = append(got, m) }); err != nil {
		t.Fatal(err)
	}
	if tg := <-f.target; tg != "fs-1" {
		t.Errorf("target %q", tg)
	}
	if len(got) != 2 || got[0].Type != "progress" || got[1].Type != "result" || got[1].BytesRead != 70 || got[1].Differences != 1 || got[1].FilesCompared != 3 {
		t.Fatalf("messages %+v", got)
	}
	err := Scrub(context.Background(), dir, "missing", time.Second, func(Message) {})
	if err == nil || !strings.Contains(err.Error(), "no running replication configuration") {
		t.Fatalf("err %v", err)
	}
}

// TestHostileRequests: malformed, unknown and oversized requests get an
// error line, and the server keeps serving.
func TestHostileRequests(t *testing.T) {
	dir, _ := start(t)
	for _, req := range []string{
		"not json\n",
		`{"op":"format-disk"}` + "\n",
		strings.Repeat("x", 10<<10) + "\n",
		`{"op":"scrub"`, // no newline, then hang up
	} {
		c, err := net.Dial("unix", SocketPath(dir))
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(req))
		if !strings.HasSuffix(req, "\n") {
			c.(*net.UnixConn).CloseWrite()
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadBytes('\n')
		c.Close()
		var m Message
		if err != nil || json.Unmarshal(line, &m) != nil || m.Type != "error" || m.Error == "" {
			t.Errorf("request %.20q: answer %q, %v", req, line, err)
		}
	}
	if err := Scrub(context.Background(), dir, "", time.Second, func(Message) {}); err != nil {
		t.Fatalf("server stopped serving: %v", err)
	}
}
