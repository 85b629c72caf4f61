package nfs

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/efsd/efsd/internal/fsview"
	nfsc "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"
	"github.com/willscott/go-nfs-client/nfs/xdr"
)

// The calls go-nfs cannot answer are answered by the connection layer, in order with go-nfs's
// replies, and the connection keeps working.
func TestCallsAnsweredByTheConnection(t *testing.T) {
	e := newEnv(t)
	if err := os.WriteFile(e.path("f"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, addr := e.start("")
	c := mustMount(t, addr, "/", rootAuth)
	type void struct{ rpc.Header }
	call := func(prog, vers, proc uint32) ([]byte, error) {
		res, err := c.Call(&void{rpc.Header{Rpcvers: 2, Prog: prog, Vers: vers, Proc: proc, Cred: rootAuth, Verf: rpc.AuthNull}})
		if err != nil {
			return nil, err
		}
		var rest []byte
		buf := make([]byte, 64)
		for {
			n, err := res.Read(buf)
			rest = append(rest, buf[:n]...)
			if err != nil || n == 0 {
				return rest, nil
			}
		}
	}
	for _, tc := range []struct {
		name             string
		prog, vers, proc uint32
		body             []byte
		err              string
	}{
		{"MOUNT EXPORT", 100005, 3, 5, []byte{0, 0, 0, 0}, ""},
		{"MOUNT DUMP", 100005, 3, 2, []byte{0, 0, 0, 0}, ""},
		{"MOUNT UMNTALL", 100005, 3, 4, nil, ""},
		{"MOUNT v1", 100005, 1, 1, nil, "PROG_MISMATCH"},
		{"NFSv4 NULL", 100003, 4, 0, nil, "PROG_MISMATCH"},
		{"NFSv2 NULL", 100003, 2, 0, nil, "PROG_MISMATCH"},
		{"NLM", 100021, 4, 0, nil, "PROG_UNAVAIL"},
		{"portmapper", 100000, 2, 3, nil, "PROG_UNAVAIL"},
		{"NFS proc 22", 100003, 3, 22, nil, "PROC_UNAVAIL"},
		{"NFS NULL", 100003, 3, 0, nil, ""},
	} {
		for i := 0; i < 3; i++ { // interleaved with go-nfs's replies
			body, err := call(tc.prog, tc.vers, tc.proc)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("%s: %v, want %s", tc.name, err, tc.err)
				}
			} else if err != nil || string(body) != string(tc.body) {
				t.Errorf("%s: body %x, %v; want %x", tc.name, body, err, tc.body)
			}
			if got := c.readFile(t, "f"); string(got) != "data" {
				t.Fatalf("after %s: read %q", tc.name, got)
			}
		}
	}
}

// Garbage closes the connection; the server goes on serving others.
func TestMalformedRecords(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start("")
	for _, junk := range [][]byte{
		{0x00, 0x00, 0x00, 0x30},                                                            // not the last fragment
		{0x80, 0x00, 0x00, 0x04, 1, 2, 3, 4},                                                // too short
		append([]byte{0x80, 0x00, 0x00, 0x28}, make([]byte, 40)...),                         // a call without rpcvers... all zeros: CALL, prog 0
		append([]byte{0x80, 0x00, 0x00, 0x28, 0, 0, 0, 1, 0, 0, 0, 1}, make([]byte, 32)...), // a REPLY
	} {
		conn, err := netDial(addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(junk); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		_, _ = conn.Read(buf) // closed, or a PROG_UNAVAIL reply
		conn.Close()
	}
	c := mustMount(t, addr, "/", rootAuth)
	if _, err := c.ReadDirPlus("/"); err != nil {
		t.Fatal(err)
	}
}

// A directory listed in many pages comes out whole, once, and concurrently with other clients.
func TestLargeDirectory(t *testing.T) {
	e := newEnv(t)
	const n = 500
	if err := os.Mkdir(e.path("big"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := os.WriteFile(e.path(fmt.Sprintf("big/file-%04d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, addr := e.start("")
	var wg sync.WaitGroup
	for k := 0; k < 4; k++ {
		c := mustMount(t, addr, "/", authUnix(uint32(1000+k), 1000))
		wg.Add(1)
		go func() {
			defer wg.Done()
			entries, err := c.ReadDirPlus("big")
			if err != nil {
				t.Error(err)
				return
			}
			var names []string
			for _, en := range entries {
				if en.Name() != "." && en.Name() != ".." {
					names = append(names, en.Name())
				}
			}
			sort.Strings(names)
			if len(names) != n {
				t.Errorf("listed %d entries, want %d", len(names), n)
				return
			}
			for i, name := range names {
				if want := fmt.Sprintf("file-%04d", i); name != want {
					t.Errorf("entry %d = %s, want %s", i, name, want)
					return
				}
			}
			// Every handle READDIRPLUS returned resolves.
			for _, en := range entries[:20] {
				if !en.Handle.IsSet {
					continue
				}
				if _, st, err := c.getattrRaw(en.Handle.FH); err != nil || st != 0 {
					t.Errorf("GETATTR %s: %d %v", en.Name(), st, err)
				}
			}
		}()
	}
	wg.Wait()
}

func TestParseCall(t *testing.T) {
	type callMsg struct {
		Xid     uint32
		Msgtype uint32
		rpc.Header
		FH    []byte
		Sattr nfsc.Sattr3
		Guard uint32
	}
	var b strings.Builder
	msg := callMsg{Xid: 7, Header: rpc.Header{Rpcvers: 2, Prog: 100003, Vers: 3, Proc: procSetattr, Cred: authUnix(10, 20, 30, 40), Verf: rpc.AuthNull},
		FH: []byte{1, 2, 3, 4, 5, 6, 7, 8}, Sattr: nfsc.Sattr3{Mode: nfsc.SetMode{SetIt: true, Mode: 0o4755}, Atime: nfsc.SetTime{SetIt: nfsc.SetToServerTime}}}
	if err := xdr.Write(&b, msg); err != nil {
		t.Fatal(err)
	}
	c, ok := parseCall([]byte(b.String()))
	if !ok {
		t.Fatal("parseCall failed")
	}
	if c.xid != 7 || !c.is(procSetattr) || !c.authUnix || c.uid != 10 || c.gid != 20 || len(c.gids) != 2 || c.gids[1] != 40 {
		t.Errorf("header: %+v", c)
	}
	if c.sattr == nil || c.sattr.mode == nil || *c.sattr.mode != 0o4755 || c.sattr.atimeHow != 1 || c.sattr.mtimeHow != 0 || c.guard != nil {
		t.Errorf("sattr: %+v", c.sattr)
	}
	if _, ok := parseCall([]byte(b.String())[:30]); ok {
		t.Errorf("truncated header parsed")
	}
	if c, ok := parseCall([]byte(b.String())[:90]); !ok || c.sattr != nil {
		t.Errorf("truncated arguments: %+v %v", c, ok)
	}
	if id := (*callInfo)(nil).identity(); id.UID != fsview.Nobody.UID || id.GID != fsview.Nobody.GID {
		t.Errorf("no call: not nobody")
	}
}

// A client that sends calls and never reads the replies does not keep Close from returning.
func TestCloseWithAClientThatDoesNotRead(t *testing.T) {
	e := newEnv(t)
	if err := os.WriteFile(e.path("big"), pattern(4<<20, 5), 0o644); err != nil {
		t.Fatal(err)
	}
	s, addr := e.start("")
	c := mustMount(t, addr, "/", rootAuth)
	_, fh, err := c.Lookup("big")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := netDial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	type readCall struct {
		Xid, Msgtype uint32
		rpc.Header
		FH     []byte
		Offset uint64
		Count  uint32
	}
	var rec strings.Builder
	for i := 0; i < 64; i++ {
		var b strings.Builder
		if err := xdr.Write(&b, readCall{Xid: uint32(i), Header: c.header(nfsc.NFSProc3Read), FH: fh, Count: 1 << 20}); err != nil {
			t.Fatal(err)
		}
		n := uint32(b.Len()) | 0x80000000
		rec.WriteString(string([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}))
		rec.WriteString(b.String())
	}
	go func() { _, _ = conn.Write([]byte(rec.String())) }()
	time.Sleep(300 * time.Millisecond) // replies fill the socket buffers
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
}
