package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/efsd/efsd/bench/internal/loadgen"
)

// nfsBomb: calls whose record marker claims the largest record a marker
// can carry (0xFFFFFFFF: last fragment, 2^31-1 bytes, ~4 GiB read as an
// unsigned length), followed by a complete 48-byte MOUNT call (or a
// GETATTR call) and nothing more, on several connections held open. A
// server that sizes its buffer from the marker allocates gigabytes.
func (h *harness) nfsBomb() result {
	conns := pick(h, 8, 4)
	hold := pick(h, 20*time.Second, 5*time.Second)
	r := result{held: true}
	in, t, err := h.startWithMount("nfs-bomb", efsdOpts{})
	if err != nil {
		r.fail("setup: %v", err)
		return r
	}
	defer in.stop()
	// The root handle, for the GETATTR bomb.
	c, err := dialRPC(t.addr, "", 10*time.Second)
	if err != nil {
		r.fail("setup: %v", err)
		return r
	}
	root, err := c.mount("/")
	c.Close()
	if err != nil {
		r.fail("setup: %v", err)
		return r
	}
	base := in.peak()

	// Four calls, each framed by a marker claiming the largest record:
	// a well-formed 48-byte MOUNT call, one whose dirpath claims ~4 GiB,
	// and the same two for GETATTR. Then zeros, as the record promised,
	// until streamMax or until efsd closes the connection.
	huge := xdrw{}.u32(0xFFFFFFFF).u32(0)
	variants := []struct {
		what string
		msg  []byte
	}{
		{"MOUNT", callHeader(1, progMount, 3, 1, true, 0).opaque([]byte("/"))},
		{"MOUNT, dirpath claiming 4 GiB", append(callHeader(2, progMount, 3, 1, true, 0), huge...)},
		{"GETATTR", callHeader(3, progNFS, 3, procGetattr, true, 0).opaque(root)},
		{"GETATTR, handle claiming 4 GiB", append(callHeader(4, progNFS, 3, procGetattr, true, 0), huge...)},
	}
	// Streams stop at streamMax each, or as soon as efsd's memory passes
	// the ceiling (the verdict is then known, and the machine is shared).
	streamMax := pick(h, 1<<30, 256<<20)
	var stop atomic.Bool
	var open []net.Conn
	var wg sync.WaitGroup
	defer func() {
		for _, c := range open {
			c.Close()
		}
		wg.Wait()
	}()
	d := net.Dialer{Timeout: 5 * time.Second, Control: loadgen.LoopbackOnly}
	var streamed atomic.Int64
	for i := range conns {
		conn, err := d.DialContext(h.ctx, "tcp", t.addr)
		if err != nil {
			r.fail("connect %d: %v", i, err)
			return r
		}
		open = append(open, conn)
		v := variants[i%len(variants)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn.SetWriteDeadline(time.Now().Add(hold))
			if _, err := conn.Write(append(binary.BigEndian.AppendUint32(nil, 0xFFFFFFFF), v.msg...)); err != nil {
				return
			}
			zeros := make([]byte, 64<<10)
			for sent := 0; sent < streamMax && !stop.Load(); sent += len(zeros) {
				if _, err := conn.Write(zeros); err != nil {
					return
				}
				streamed.Add(int64(len(zeros)))
			}
		}()
	}
	r.scale = fmt.Sprintf("%d connections (MOUNT and GETATTR, well-formed and with a 4 GiB opaque), marker 0xFFFFFFFF, then up to %d MiB of zeros each; held %v",
		conns, streamMax>>20, hold)
	if streamMax >= 1<<30 {
		r.scale = strings.Replace(r.scale, fmt.Sprintf("%d MiB", streamMax>>20), fmt.Sprintf("%d GiB", streamMax>>30), 1)
	}
	logf("  %d bombs sent (MOUNT call %d bytes); holding %v", conns, len(variants[0].msg), hold)
	end := time.Now().Add(hold)
	for time.Now().Before(end) && h.check() == nil {
		if ok, _ := in.alive(); !ok {
			break
		}
		if in.peak() > h.rssCeiling {
			stop.Store(true)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop.Store(true)
	r.fig("%d MiB of the records sent", streamed.Load()>>20)
	// How many bomb connections has the server closed?
	closed := 0
	for _, c := range open {
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := c.Read(make([]byte, 512)); err != nil && !isTimeout(err) {
			closed++
		}
	}
	peak := in.peak()
	r.fig("peak RSS %s (before %s)", mb(peak), mb(base))
	r.fig("%d/%d bomb connections closed by efsd", closed, conns)
	if ok, why := in.alive(); !ok {
		r.fail("%s", why)
		return r
	}
	if peak > h.rssCeiling {
		r.fail("peak RSS %s above the %s ceiling", mb(peak), mb(h.rssCeiling))
	}
	// The normal client, with the bombs still connected.
	if lat, err := in.normalAPI(devAcct, 10*time.Second); err != nil {
		r.fail("normal API client: %v", err)
	} else {
		r.fig("normal API %s", ms(lat))
	}
	if lat, err := t.normalNFS(h, 10*time.Second); err != nil {
		r.fail("normal NFS client: %v", err)
	} else {
		r.fig("normal NFS mount+read %s", ms(lat))
	}
	if ok, why := in.alive(); !ok {
		r.fail("%s", why)
	}
	return r
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
