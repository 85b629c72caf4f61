package nfs

import (
	"context"
	"fmt"
	"io"
	"net/netip"

	"github.com/efsd/efsd/internal/fsview"
)

// V4 serves the NFSv4 calls (program 100003, version 4) that arrive on a Server's listeners, beside
// NFSv3 and MOUNT: one port serves every version, as knfsd's and EFS's do. The connection layer
// reads each v4 call's whole record (at most maxRecord bytes) before calling it, and writes its
// reply in order with the connection's other replies.
type V4 interface {
	ServeNFSv4(ctx context.Context, call *V4Call) (acceptStat uint32, reply []byte)
	// ConnClosed is called when a connection that made v4 calls closes.
	ConnClosed(conn uint64)
}

// V4Call is one NFSv4 call.
type V4Call struct {
	Conn    uint64 // the connection's number, unique within the process
	Client  netip.AddrPort
	Proc    uint32
	AuthSys bool            // the call carries AUTH_SYS credentials
	Cred    fsview.Identity // AUTH_SYS credentials (fsview.Nobody without them)
	Machine string          // AUTH_SYS machine name
	Args    []byte          // the procedure's arguments
}

// Accept stats a V4 may answer with (RFC 5531).
const (
	AcceptSuccess     = acceptSuccess
	AcceptProcUnavail = acceptProcUnavail
	AcceptGarbageArgs = acceptGarbageArgs
	AcceptSystemErr   = 5
)

// MaxV4Record is the largest v4 call record read (a COMPOUND with a WRITE of 1 MiB); a larger
// record closes the connection.
const MaxV4Record = maxRecord

// SetV4 makes s serve NFSv4 with v (before Serve). Without it, v4 calls get PROG_MISMATCH 3-3.
func (s *Server) SetV4(v V4) { s.v4 = v }

// FS is the protocol-neutral file system the Server serves (shared with its V4).
func (s *Server) FS() *fsview.FS { return s.fs }

// serveV4 reads the rest of a v4 call's record, has the V4 serve it, and writes the reply.
func (c *rpcConn) serveV4(call *callInfo, size int64) error {
	rec := make([]byte, 4+size)
	if _, err := io.ReadFull(c.br, rec); err != nil {
		return err
	}
	c.v4used = true
	args := rec[4+call.argOff:]
	id := call.identity()
	var client netip.AddrPort
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		client = ap
	}
	stat, body := c.callV4(&V4Call{Conn: c.id, Client: client, Proc: call.proc, AuthSys: call.authUnix,
		Cred: id, Machine: call.machine, Args: args})
	out := acceptedReply(call.xid, stat, body)
	c.stats.reply(call, len(out))
	return c.reply(out)
}

// callV4 calls the V4, answering SYSTEM_ERR if it panics: one call's defect must not take the
// server, and every other client's mounts, down with it.
func (c *rpcConn) callV4(call *V4Call) (stat uint32, body []byte) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("nfs: NFSv4 call failed: panic", "err", fmt.Sprint(p), "client", call.Client.String())
			stat, body = AcceptSystemErr, nil
		}
	}()
	return c.v4.ServeNFSv4(c.ctx, call)
}
