package nfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	nfsc "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/xdr"
)

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// callRecord frames one RPC call with AUTH_NULL credentials: marker, header, then args.
func callRecord(xid, prog, vers, proc uint32, args ...[]byte) []byte {
	body := bytes.Join([][]byte{be32(xid), be32(0), be32(2), be32(prog), be32(vers), be32(proc),
		be32(0), be32(0), be32(0), be32(0)}, nil)
	for _, a := range args {
		body = append(body, a...)
	}
	return append(be32(0x80000000|uint32(len(body))), body...)
}

// opaqueArg encodes an XDR opaque.
func opaqueArg(b []byte) []byte {
	out := append(be32(uint32(len(b))), b...)
	for len(out)%4 != 0 {
		out = append(out, 0)
	}
	return out
}

// readReply reads one reply record from conn: its accept_stat and what follows it.
func readReply(conn net.Conn) (uint32, []byte, error) {
	var mark [4]byte
	if _, err := io.ReadFull(conn, mark[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(mark[:]) & 0x7fffffff
	if n > 4<<20 {
		return 0, nil, errors.New("reply too large")
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(conn, body); err != nil {
		return 0, nil, err
	}
	if len(body) < 24 {
		return 0, nil, errors.New("short reply")
	}
	return binary.BigEndian.Uint32(body[20:24]), body[24:], nil
}

// heapInuse returns the heap in use after a collection.
func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// Lengths in a call are hostile: none makes the server allocate what it claims. Before this was
// bounded, each of these ~50-byte calls made go-nfs allocate 256 MiB (4 GiB with a larger
// claim) and keep it while it waited for the data.
func TestRecordBombs(t *testing.T) {
	e := newEnv(t)
	if err := os.WriteFile(e.path("f"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, addr := e.start("")
	c := mustMount(t, addr, "/", rootAuth)
	const claim = 256 << 20
	bombs := []struct {
		name    string
		rec     []byte
		garbage bool // answered GARBAGE_ARGS; else the connection is closed
	}{
		{"MOUNT dirpath", callRecord(1, progMount, 3, mountProcMnt, be32(claim)), true},
		{"GETATTR handle", callRecord(2, progNFS, 3, procGetattr, be32(claim)), true},
		{"LOOKUP name", callRecord(3, progNFS, 3, procLookup, opaqueArg(make([]byte, 32)), be32(claim)), true},
		{"WRITE data", callRecord(4, progNFS, 3, procWrite, opaqueArg(make([]byte, 32)), make([]byte, 16), be32(claim)), true},
		{"READDIR handle", callRecord(5, progNFS, 3, procReaddir, be32(claim)), true},
		{"record marker", append(be32(0xffffffff), callRecord(6, progNFS, 3, procGetattr, be32(claim))[4:]...), false},
		// well-formed LINK3args, but go-nfs decodes them as SYMLINK's: the link's name holds the
		// sattr3 it reads and then the length of a "target" (answered NFS3ERR_ACCES)
		{"LINK name", callRecord(7, progNFS, 3, procLink, opaqueArg(make([]byte, 32)), opaqueArg(make([]byte, 32)),
			opaqueArg(append(make([]byte, 24), be32(claim)...))), false},
	}
	before := heapInuse()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	allocBefore := ms.TotalAlloc
	var conns []net.Conn
	defer func() {
		for _, conn := range conns {
			conn.Close()
		}
	}()
	for i := 0; i < 20; i++ {
		conn, err := netDial(addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
		if _, err := conn.Write(bombs[i%len(bombs)].rec); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for i, conn := range conns {
		b := bombs[i%len(bombs)]
		_ = conn.SetReadDeadline(deadline)
		stat, body, err := readReply(conn)
		switch {
		case b.name == "LINK name":
			if err != nil || stat != 0 || len(body) < 4 || binary.BigEndian.Uint32(body) != nfsc.NFS3ErrAcces {
				t.Errorf("%s: accept_stat %d, body %x, %v; want NFS3ERR_ACCES", b.name, stat, body, err)
			}
		case b.garbage && (err != nil || stat != acceptGarbageArgs):
			t.Errorf("%s: accept_stat %d, %v; want GARBAGE_ARGS", b.name, stat, err)
		case !b.garbage && !errors.Is(err, io.EOF) && !isReset(err):
			t.Errorf("%s: %v, want the connection closed", b.name, err)
		}
	}
	if grown := int64(heapInuse()) - int64(before); grown > 32<<20 {
		t.Errorf("heap grew by %d MiB under 20 record bombs", grown>>20)
	}
	runtime.ReadMemStats(&ms)
	if n := ms.TotalAlloc - allocBefore; n > 64<<20 {
		t.Errorf("20 record bombs allocated %d MiB, even if only for a moment", n>>20)
	}
	if got := c.readFile(t, "f"); string(got) != "data" {
		t.Errorf("read %q after the bombs", got)
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

// FSINFO advertises the record bound's transfer size, and READ, READDIR and WRITE keep to it.
func TestTransferSizesAreBounded(t *testing.T) {
	e := newEnv(t)
	data := pattern(3<<20, 9)
	if err := os.WriteFile(e.path("big"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, addr := e.start("")
	c := mustMount(t, addr, "/", rootAuth)
	_, fh, err := c.Lookup("big")
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.FSInfo()
	if err != nil {
		t.Fatal(err)
	}
	if info.RTMax != maxIO || info.WTMax != maxIO || info.WTPref != maxIO {
		t.Errorf("FSINFO rtmax %d wtmax %d wtpref %d, want %d", info.RTMax, info.WTMax, info.WTPref, maxIO)
	}
	if info.Properties&fsfLink != 0 {
		t.Errorf("FSINFO advertises hard links")
	}

	conn, err := netDial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	// READ of 4 GiB - 1: one transfer of at most maxIO comes back.
	if _, err := conn.Write(callRecord(1, progNFS, 3, procRead, opaqueArg(fh), make([]byte, 8), be32(0xffffffff))); err != nil {
		t.Fatal(err)
	}
	stat, body, err := readReply(conn)
	if err != nil || stat != 0 {
		t.Fatalf("READ: %d %v", stat, err)
	}
	r := bytes.NewReader(body)
	var res struct {
		Status uint32
		Attr   nfsc.PostOpAttr
		Count  uint32
		EOF    uint32
		Data   []byte
	}
	if err := xdr.Read(r, &res); err != nil {
		t.Fatal(err)
	}
	if res.Status != 0 || res.Count != maxIO || len(res.Data) != maxIO || !bytes.Equal(res.Data, data[:maxIO]) {
		t.Errorf("READ of 4 GiB: status %d count %d, %d bytes; want %d", res.Status, res.Count, len(res.Data), maxIO)
	}
	// WRITE of maxIO+4 bytes: GARBAGE_ARGS, and the connection goes on.
	big := callRecord(2, progNFS, 3, procWrite, opaqueArg(fh), make([]byte, 8), be32(maxIO+4), be32(2), opaqueArg(make([]byte, maxIO+4)))
	if _, err := conn.Write(big); err != nil {
		t.Fatal(err)
	}
	if stat, _, err := readReply(conn); err != nil || stat != acceptGarbageArgs {
		t.Errorf("WRITE of maxIO+4 bytes: accept_stat %d, %v; want GARBAGE_ARGS", stat, err)
	}
	// A WRITE of maxIO is served.
	if st, _, err := c.writeFH(fh, 0, pattern(maxIO, 1)); err != nil || st != 0 {
		t.Errorf("WRITE of maxIO: %d %v", st, err)
	}
	// go-nfs-client writes in wtpref chunks: a file larger than maxIO goes through.
	c.writeFile(t, "copy", data, 0o644)
	if got, _ := os.ReadFile(e.path("copy")); !bytes.Equal(got, data) {
		t.Errorf("copy: %d bytes", len(got))
	}
}

// Idle connections and stalled records are closed (the record timeout being the shorter), a
// connection costs a bounded amount of memory, and a normal client is served throughout.
func TestIdleAndStalledConnections(t *testing.T) {
	e := newEnv(t)
	if err := os.WriteFile(e.path("f"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.limits = ConnLimits{IdleTimeout: 2 * time.Second, RecordTimeout: 300 * time.Millisecond, MaxConnsPerClient: -1}
	_, addr := e.start("")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a normal client, busy all along
		defer wg.Done()
		c := mustMount(t, addr, "/", rootAuth)
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := c.Getattr("f"); err != nil {
				t.Errorf("GETATTR during the attack: %v", err)
				return
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	before := heapInuse()
	const n = 300
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, conn := range conns {
			conn.Close()
		}
	}()
	partial := callRecord(1, progNFS, 3, procGetattr, opaqueArg(make([]byte, 32)))[:20]
	// a WRITE whose data stops coming after 16 KiB (go-nfs is then reading the record)
	partialWrite := callRecord(2, progNFS, 3, procWrite, opaqueArg(make([]byte, 32)), make([]byte, 8), be32(64<<10), be32(2),
		opaqueArg(make([]byte, 64<<10)))[:16<<10]
	for i := 0; i < n; i++ {
		conn, err := netDial(addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
		if i%2 == 1 { // a record started and stalled (slowloris)
			rec := partial
			if i%4 == 3 {
				rec = partialWrite
			}
			if _, err := conn.Write(rec); err != nil {
				t.Fatal(err)
			}
		}
	}
	time.Sleep(100 * time.Millisecond) // let the server accept them all
	per := (int64(heapInuse()) - int64(before)) / n
	t.Logf("a connection (idle or stalled) holds %d KiB", per>>10)
	if per > 64<<10 {
		t.Errorf("an idle or stalled connection holds %d KiB", per>>10)
	}
	start := time.Now()
	closedBy := func(conn net.Conn, limit time.Duration) bool {
		_ = conn.SetReadDeadline(start.Add(limit))
		_, err := conn.Read(make([]byte, 1))
		return errors.Is(err, io.EOF) || isReset(err)
	}
	for i := 1; i < n; i += 2 {
		if !closedBy(conns[i], 1500*time.Millisecond) {
			t.Fatalf("stalled record %d: connection still open after %v", i, time.Since(start))
		}
	}
	if closedBy(conns[0], 0) {
		t.Errorf("idle connection closed before the idle timeout")
	}
	for i := 0; i < n; i += 2 {
		if !closedBy(conns[i], 5*time.Second) {
			t.Fatalf("idle connection %d still open after %v", i, time.Since(start))
		}
	}
}

// flakyListener fails its first Accepts with errors such as running out of descriptors.
type flakyListener struct {
	net.Listener
	mu    sync.Mutex
	fails int
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.fails > 0 {
		l.fails--
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

// An accept error (EMFILE: too many open files) is retried: the server does not stop for good.
func TestAcceptErrorsAreRetried(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(e.export(), e.handles, testLogger(t))
	done := make(chan error, 1)
	go func() { done <- s.Serve(&flakyListener{Listener: ln, fails: 5}) }()
	defer func() {
		_ = s.Close()
		<-done
	}()
	c, err := mount(t, ln.Addr().String(), "/", rootAuth)
	if err != nil {
		t.Fatalf("mount after accept errors: %v", err)
	}
	if _, err := c.ReadDirPlus("/"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("Serve returned: %v", err)
	default:
	}
}

// One address cannot take the whole listener: connections over the per-client cap are closed at
// once (300 idle connections from 127.0.0.2 keep 16 slots), the listener cap holds across
// addresses, and a client from another address is served.
func TestConnectionCaps(t *testing.T) {
	e := newEnv(t)
	if err := os.WriteFile(e.path("f"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.limits = ConnLimits{MaxConns: 40, MaxConnsPerClient: 16}
	_, addr := e.start("")
	dialFrom := func(ip string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 2 * time.Second}
		return d.Dial("tcp", addr)
	}
	var conns []net.Conn
	defer func() {
		for _, conn := range conns {
			conn.Close()
		}
	}()
	// open opens n connections from ip and returns how many the server keeps, once it has accepted
	// (or closed at once) them all.
	open := func(ip string, n, want int) int {
		var mine []net.Conn
		for i := 0; i < n; i++ {
			conn, err := dialFrom(ip)
			if err != nil {
				t.Fatal(err)
			}
			mine = append(mine, conn)
		}
		conns = append(conns, mine...)
		closed := make([]bool, n)
		alive := n
		for deadline := time.Now().Add(5 * time.Second); alive != want && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
			alive = 0
			for i, conn := range mine {
				if !closed[i] {
					_ = conn.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
					_, err := conn.Read(make([]byte, 1))
					closed[i] = !isTimeout(err)
				}
				if !closed[i] {
					alive++
				}
			}
		}
		return alive
	}
	if n := open("127.0.0.2", 300, 16); n != 16 {
		t.Errorf("127.0.0.2 holds %d connections, want 16", n)
	}
	if n := open("127.0.0.3", 16, 16); n != 16 {
		t.Errorf("127.0.0.3 holds %d connections, want 16", n)
	}
	if n := open("127.0.0.4", 16, 8); n != 8 {
		t.Errorf("127.0.0.4 holds %d connections, want the 8 left under the listener cap", n)
	}
	for _, conn := range conns[:300] { // 127.0.0.2 gives up its connections
		conn.Close()
	}
	c := mustMount(t, addr, "/", rootAuth)
	if got := c.readFile(t, "f"); string(got) != "data" {
		t.Errorf("read %q", got)
	}
}

// Large transfers share a fixed number of slots: 80 connections that ask for 1 MiB READs and never
// read the replies hold only what MaxLargeCalls of them may, and small calls go on being served.
func TestLargeCallsAreBounded(t *testing.T) {
	e := newEnv(t)
	if err := os.WriteFile(e.path("big"), pattern(maxIO, 3), 0o644); err != nil {
		t.Fatal(err)
	}
	e.limits = ConnLimits{MaxLargeCalls: 2, MaxConnsPerClient: -1}
	_, addr := e.start("")
	c := mustMount(t, addr, "/", rootAuth)
	_, fh, err := c.Lookup("big")
	if err != nil {
		t.Fatal(err)
	}
	base := heapInuse()
	var rec []byte
	for j := 0; j < 8; j++ {
		rec = append(rec, callRecord(uint32(j), progNFS, 3, procRead, opaqueArg(fh), make([]byte, 8), be32(maxIO))...)
	}
	for i := 0; i < 80; i++ {
		conn, err := netDial(addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.(*net.TCPConn).SetReadBuffer(4 << 10)
		if _, err := conn.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second) // the replies fill the socket buffers
	grown := int64(heapInuse()) - int64(base)
	t.Logf("heap grew by %d MiB", grown>>20)
	if grown > 32<<20 {
		t.Errorf("heap grew by %d MiB under 80 connections not reading their 1 MiB READs", grown>>20)
	}
	if _, err := c.Getattr("big"); err != nil {
		t.Errorf("GETATTR: %v", err)
	}
}
