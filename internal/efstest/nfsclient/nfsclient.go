// Package nfsclient is an NFSv3 client for tests: go-nfs-client's Target
// for what it does, and raw calls for what it does not expose — a WRITE
// with a chosen stable_how, and the write verifiers of WRITE and COMMIT
// replies, which tell a client whether unstable data must be sent again.
package nfsclient

import (
	"bytes"
	"fmt"
	"io"

	nfsc "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"
	"github.com/willscott/go-nfs-client/nfs/xdr"
)

// stable_how of a WRITE (RFC 1813 3.3.7).
const (
	Unstable = 0
	DataSync = 1
	FileSync = 2
)

// AuthUnix is an AUTH_UNIX credential.
func AuthUnix(uid, gid uint32, gids ...uint32) rpc.Auth {
	type body struct {
		Stamp       uint32
		Machinename string
		UID, GID    uint32
		Gids        []uint32
	}
	var b bytes.Buffer
	if err := xdr.Write(&b, body{Stamp: 1, Machinename: "test", UID: uid, GID: gid, Gids: gids}); err != nil {
		panic(err) // a fixed shape: cannot fail
	}
	return rpc.Auth{Flavor: 1, Body: b.Bytes()}
}

// Conn is a mounted export over one connection (MOUNT and NFS share it).
type Conn struct {
	*nfsc.Target
	Auth rpc.Auth
	rpc  *rpc.Client
}

// Dial connects to the NFS (and MOUNT) server at addr. go-nfs-client
// binds a random local port: the rare collision is retried.
func Dial(addr string) (*rpc.Client, error) {
	var c *rpc.Client
	var err error
	for range 20 {
		if c, err = rpc.DialTCP("tcp", addr, false); err == nil {
			return c, nil
		}
	}
	return nil, fmt.Errorf("dial %s: %w", addr, err)
}

// Mount dials addr and mounts dirpath.
func Mount(addr, dirpath string, auth rpc.Auth) (*Conn, error) {
	c, err := Dial(addr)
	if err != nil {
		return nil, err
	}
	target, err := (&nfsc.Mount{Client: c}).Mount(dirpath, auth)
	if err != nil {
		c.Close()
		return nil, err
	}
	return &Conn{Target: target, Auth: auth, rpc: c}, nil
}

// Close closes the connection.
func (c *Conn) Close() { c.rpc.Close() }

// Header is the RPC header of an NFSv3 call of proc with auth.
func Header(auth rpc.Auth, proc uint32) rpc.Header {
	return rpc.Header{Rpcvers: 2, Prog: nfsc.Nfs3Prog, Vers: nfsc.Nfs3Vers, Proc: proc, Cred: auth, Verf: rpc.AuthNull}
}

// Raw makes an NFSv3 call and returns the nfsstat3 and the rest of the reply.
func Raw(t *nfsc.Target, call any) (uint32, io.ReadSeeker, error) {
	res, err := t.Call(call)
	if err != nil {
		return 0, nil, err
	}
	st, err := xdr.ReadUint32(res)
	return st, res, err
}

// Written is what a WRITE reply says.
type Written struct {
	Count     uint32
	Committed uint32 // the stable_how the server made the write
	Verf      uint64 // the server's write verifier
}

// Write makes one WRITE of data at off through fh with stable_how how; st
// is the nfsstat3 (the result is valid when it is 0).
func Write(t *nfsc.Target, auth rpc.Auth, fh []byte, off uint64, data []byte, how uint32) (w Written, st uint32, err error) {
	type args struct {
		rpc.Header
		FH     []byte
		Offset uint64
		Count  uint32
		How    uint32
		Data   []byte
	}
	st, r, err := Raw(t, &args{Header: Header(auth, nfsc.NFSProc3Write), FH: fh, Offset: off, Count: uint32(len(data)), How: how, Data: data})
	if err != nil || st != 0 {
		return w, st, err
	}
	var res struct {
		Wcc       nfsc.WccData
		Count     uint32
		Committed uint32
		Verf      uint64
	}
	if err := xdr.Read(r, &res); err != nil {
		return w, 0, fmt.Errorf("WRITE reply: %w", err)
	}
	return Written{Count: res.Count, Committed: res.Committed, Verf: res.Verf}, 0, nil
}

// Commit makes a COMMIT of all of fh and returns the server's write
// verifier.
func Commit(t *nfsc.Target, auth rpc.Auth, fh []byte) (verf uint64, st uint32, err error) {
	type args struct {
		rpc.Header
		FH     []byte
		Offset uint64
		Count  uint32
	}
	st, r, err := Raw(t, &args{Header: Header(auth, nfsc.NFSProc3Commit), FH: fh})
	if err != nil || st != 0 {
		return 0, st, err
	}
	var res struct {
		Wcc  nfsc.WccData
		Verf uint64
	}
	if err := xdr.Read(r, &res); err != nil {
		return 0, 0, fmt.Errorf("COMMIT reply: %w", err)
	}
	return res.Verf, 0, nil
}

// Read makes one READ of up to count bytes at off through fh; st is the
// nfsstat3 (the data is valid when it is 0).
func Read(t *nfsc.Target, auth rpc.Auth, fh []byte, off uint64, count uint32) (data []byte, eof bool, st uint32, err error) {
	type args struct {
		rpc.Header
		FH     []byte
		Offset uint64
		Count  uint32
	}
	st, r, err := Raw(t, &args{Header: Header(auth, nfsc.NFSProc3Read), FH: fh, Offset: off, Count: count})
	if err != nil || st != 0 {
		return nil, false, st, err
	}
	var res struct {
		Attr  nfsc.PostOpAttr
		Count uint32
		EOF   uint32
		Data  []byte
	}
	if err := xdr.Read(r, &res); err != nil {
		return nil, false, 0, fmt.Errorf("READ reply: %w", err)
	}
	return res.Data, res.EOF != 0, 0, nil
}

// ReadAll reads a whole file through fh with READ calls.
func ReadAll(t *nfsc.Target, auth rpc.Auth, fh []byte) ([]byte, uint32, error) {
	var out []byte
	for {
		data, eof, st, err := Read(t, auth, fh, uint64(len(out)), 256<<10)
		if err != nil || st != 0 {
			return nil, st, err
		}
		out = append(out, data...)
		if eof {
			return out, 0, nil
		}
	}
}
