package nfs

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/efsd/efsd/internal/fsview"
)

// panicky is a V4 whose every call panics.
type panicky struct{}

func (panicky) ServeNFSv4(context.Context, *V4Call) (uint32, []byte) { panic("a defect") }
func (panicky) ConnClosed(uint64)                                    {}

// A V4 that panics costs its call a SYSTEM_ERR, not the server: the connection and the server go
// on serving.
func TestV4PanicIsOneCallsError(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(e.export(), fsview.NewMemHandles(), testLogger(t))
	s.SetV4(panicky{})
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Close() })
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for xid := uint32(1); xid <= 2; xid++ {
		// CALL xid, rpcvers 2, NFS 4 COMPOUND, AUTH_NULL, AUTH_NULL, no arguments
		body := make([]byte, 0, 40)
		for _, v := range []uint32{xid, 0, 2, 100003, 4, 1, 0, 0, 0, 0} {
			body = binary.BigEndian.AppendUint32(body, v)
		}
		rec := binary.BigEndian.AppendUint32(nil, 0x80000000|uint32(len(body)))
		if _, err := conn.Write(append(rec, body...)); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		reply := make([]byte, 4+24)
		if _, err := io.ReadFull(conn, reply); err != nil {
			t.Fatalf("call %d: no reply: %v", xid, err)
		}
		if got := binary.BigEndian.Uint32(reply[4:]); got != xid {
			t.Fatalf("reply to xid %d, want %d", got, xid)
		}
		if stat := binary.BigEndian.Uint32(reply[24:]); stat != AcceptSystemErr {
			t.Fatalf("call %d: accept_stat %d, want SYSTEM_ERR", xid, stat)
		}
	}
}
