package nfs4client

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/buildbarn/go-xdr/pkg/protocols/nfsv4"
	"github.com/buildbarn/go-xdr/pkg/protocols/rpcv2"
)

// fakeServer accepts one connection and answers each call record with
// what reply returns: raw bytes written as they are (record marks
// included), so tests can send broken framing. A reply of hangUp's bytes
// closes the connection after writing them.
func fakeServer(t *testing.T, reply func(call []byte) []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		for {
			rec, err := readRecord(nc, 1<<20)
			if err != nil {
				return
			}
			out := reply(rec)
			if out != nil {
				if _, err := nc.Write(out); err != nil {
					return
				}
			}
			if len(out) > 0 && &out[:1][0] == &hangUp[0] {
				return
			}
		}
	}()
	return ln.Addr().String()
}

// hangUp is a truncated record after which fakeServer hangs up.
var hangUp = []byte{0x80, 0, 0, 100, 1, 2}

// mark frames rec as one record of the given fragments' sizes.
func mark(rec []byte, frags ...int) []byte {
	if len(frags) == 0 {
		frags = []int{len(rec)}
	}
	var out []byte
	for i, n := range frags {
		h := uint32(n)
		if i == len(frags)-1 {
			h |= 0x80000000
		}
		out = binary.BigEndian.AppendUint32(out, h)
		out = append(out, rec[:n]...)
		rec = rec[n:]
	}
	return out
}

// acceptedReply builds an accepted reply to call with stat and body.
func acceptedReply(call []byte, stat rpcv2.AcceptStat, body []byte) []byte {
	b := append([]byte(nil), call[:4]...)
	b = binary.BigEndian.AppendUint32(b, uint32(rpcv2.REPLY))
	b = binary.BigEndian.AppendUint32(b, uint32(rpcv2.MSG_ACCEPTED))
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0) // AUTH_NONE verifier
	b = binary.BigEndian.AppendUint32(b, uint32(stat))
	return append(b, body...)
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestCallSendsAuthSysAndReassemblesFragments(t *testing.T) {
	var got rpcv2.RpcMsg
	addr := fakeServer(t, func(call []byte) []byte {
		if _, err := got.ReadFrom(bytes.NewReader(call)); err != nil {
			t.Errorf("server: decode call: %v", err)
		}
		rep := acceptedReply(call, rpcv2.SUCCESS, []byte("results!"))
		return mark(rep, 3, 0, len(rep)-3) // three fragments, one empty
	})
	c, err := Dial(testCtx(t, 5*time.Second), addr, Cred{UID: 1000, GID: 100, GIDs: []uint32{4, 5}, Machine: "m"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stat, body, err := c.Call(testCtx(t, 5*time.Second), 100003, 4, 1, []byte{1, 2, 3, 4})
	if err != nil || stat != 0 || string(body) != "results!" {
		t.Fatalf("Call = %d %q %v", stat, body, err)
	}
	cb := got.Body.(*rpcv2.RpcMsgBody_CALL).Cbody
	if cb.Rpcvers != 2 || cb.Prog != 100003 || cb.Vers != 4 || cb.Proc != 1 || cb.Cred.Flavor != rpcv2.AUTH_SYS {
		t.Fatalf("call body %+v", cb)
	}
	var p rpcv2.AuthsysParms
	if _, err := p.ReadFrom(bytes.NewReader(cb.Cred.Body)); err != nil || p.Uid != 1000 || p.Gid != 100 || len(p.Gids) != 2 || p.Machinename != "m" {
		t.Fatalf("AUTH_SYS %+v %v", p, err)
	}
}

func TestCallReportsMismatchAndDenial(t *testing.T) {
	addr := fakeServer(t, func(call []byte) []byte {
		switch binary.BigEndian.Uint32(call[16:]) { // version
		case 3:
			return mark(acceptedReply(call, rpcv2.PROG_MISMATCH, []byte{0, 0, 0, 4, 0, 0, 0, 4}))
		default: // MSG_DENIED, AUTH_ERROR, AUTH_TOOWEAK
			b := append([]byte(nil), call[:4]...)
			b = append(b, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 5)
			return mark(b)
		}
	})
	c, err := Dial(testCtx(t, 5*time.Second), addr, Cred{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stat, body, err := c.Call(testCtx(t, 5*time.Second), 100003, 3, 0, nil)
	if err != nil || rpcv2.AcceptStat(stat) != rpcv2.PROG_MISMATCH || len(body) != 8 {
		t.Fatalf("v3 call = %d %x %v", stat, body, err)
	}
	var re *RPCError
	if err := c.Null(testCtx(t, 5*time.Second)); !errors.As(err, &re) || !re.Denied || re.AuthStat != rpcv2.AUTH_TOOWEAK {
		t.Fatalf("Null = %v", err)
	}
}

func TestCallMatchesRepliesOutOfOrder(t *testing.T) {
	calls := make(chan []byte, 2)
	addr := fakeServer(t, func(call []byte) []byte {
		calls <- call
		if len(calls) < 2 {
			return nil
		}
		a, b := <-calls, <-calls // answer the second call first
		return append(mark(acceptedReply(b, 0, []byte("b"))), mark(acceptedReply(a, 0, []byte("a")))...)
	})
	c, err := Dial(testCtx(t, 5*time.Second), addr, Cred{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := make(chan string, 2)
	for _, arg := range []string{"a", "b"} {
		go func() {
			_, body, err := c.Call(testCtx(t, 5*time.Second), 1, 1, 1, []byte(arg+"\x00\x00\x00"))
			if err != nil {
				got <- err.Error()
				return
			}
			got <- arg + "=" + string(body)
		}()
		time.Sleep(50 * time.Millisecond) // a's call is read first
	}
	for range 2 {
		if s := <-got; s != "a=a" && s != "b=b" {
			t.Fatal(s)
		}
	}
}

func TestCallFailsCleanly(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply func(call []byte) []byte
		want  error
	}{
		{"too large", func(call []byte) []byte {
			return binary.BigEndian.AppendUint32(nil, 0x80000000|(MaxReply+1))
		}, ErrReplyTooLarge},
		{"bad reply_stat", func(call []byte) []byte {
			return mark(append(append([]byte(nil), call[:4]...), 0, 0, 0, 1, 0, 0, 0, 7))
		}, ErrMalformed},
		{"short record", func(call []byte) []byte { return mark([]byte{1, 2, 3}) }, ErrMalformed},
		{"truncated", func(call []byte) []byte { return hangUp }, ErrClosed},
		{"silent", func(call []byte) []byte { return nil }, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := fakeServer(t, tc.reply)
			c, err := Dial(testCtx(t, 5*time.Second), addr, Cred{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			err = c.Null(testCtx(t, 300*time.Millisecond))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Null = %v, want %v", err, tc.want)
			}
			if time.Since(start) > 3*time.Second {
				t.Fatalf("took %v", time.Since(start))
			}
		})
	}
}

// TestCompoundRoundTrip sends a COMPOUND of varied operations to a fake
// server, which decodes the record and checks it holds what was sent,
// and decodes the varied results it sends back.
func TestCompoundRoundTrip(t *testing.T) {
	mode := uint32(0o600)
	attrs, err := SetAttrs{Mode: &mode}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	owner := nfsv4.StateOwner4{Clientid: 9, Owner: []byte("o")}
	ops := []nfsv4.NfsArgop4{
		&nfsv4.NfsArgop4_OP_SEQUENCE{Opsequence: nfsv4.Sequence4args{SaSessionid: nfsv4.Sessionid4{1, 2}, SaSequenceid: 3}},
		&nfsv4.NfsArgop4_OP_PUTROOTFH{},
		&nfsv4.NfsArgop4_OP_LOOKUP{Oplookup: nfsv4.Lookup4args{Objname: "dir"}},
		&nfsv4.NfsArgop4_OP_OPEN{Opopen: nfsv4.Open4args{ShareAccess: nfsv4.OPEN4_SHARE_ACCESS_BOTH, Owner: owner,
			Openhow: &nfsv4.Openflag4_OPEN4_CREATE{How: &nfsv4.Createhow4_EXCLUSIVE4_1{ChCreateboth: nfsv4.Creatverfattr{CvaVerf: nfsv4.Verifier4{7}, CvaAttrs: attrs}}},
			Claim:   &nfsv4.OpenClaim4_CLAIM_NULL{File: "f"}}},
		&nfsv4.NfsArgop4_OP_GETFH{},
		&nfsv4.NfsArgop4_OP_LOCK{Oplock: nfsv4.Lock4args{Locktype: nfsv4.WRITE_LT, Length: 10, Locker: &nfsv4.Locker4_TRUE{OpenOwner: nfsv4.OpenToLockOwner4{LockOwner: owner}}}},
	}
	denied := nfsv4.Lock4denied{Offset: 2, Length: 5, Locktype: nfsv4.READ_LT, Owner: nfsv4.StateOwner4{Clientid: 8, Owner: []byte("holder")}}
	want := nfsv4.Compound4res{Status: nfsv4.NFS4ERR_DENIED, Tag: "t", Resarray: []nfsv4.NfsResop4{
		&nfsv4.NfsResop4_OP_SEQUENCE{Opsequence: &nfsv4.Sequence4res_NFS4_OK{SrResok4: nfsv4.Sequence4resok{SrSessionid: nfsv4.Sessionid4{1, 2}, SrSequenceid: 3}}},
		&nfsv4.NfsResop4_OP_PUTROOTFH{Opputrootfh: nfsv4.Putrootfh4res{}},
		&nfsv4.NfsResop4_OP_LOOKUP{Oplookup: nfsv4.Lookup4res{}},
		&nfsv4.NfsResop4_OP_OPEN{Opopen: &nfsv4.Open4res_NFS4_OK{Resok4: nfsv4.Open4resok{
			Stateid: nfsv4.Stateid4{Seqid: 1, Other: [12]byte{5}}, Cinfo: nfsv4.ChangeInfo4{Atomic: true, Before: 1, After: 2},
			Rflags: nfsv4.OPEN4_RESULT_LOCKTYPE_POSIX, Attrset: Bitmap(nfsv4.FATTR4_MODE), Delegation: &nfsv4.OpenDelegation4_OPEN_DELEGATE_NONE{},
		}}},
		&nfsv4.NfsResop4_OP_GETFH{Opgetfh: &nfsv4.Getfh4res_NFS4_OK{Resok4: nfsv4.Getfh4resok{Object: []byte("handle")}}},
		&nfsv4.NfsResop4_OP_LOCK{Oplock: &nfsv4.Lock4res_NFS4ERR_DENIED{Denied: denied}},
	}}
	addr := fakeServer(t, func(call []byte) []byte {
		r := bytes.NewReader(call)
		var msg rpcv2.RpcMsg
		var args nfsv4.Compound4args
		if _, err := msg.ReadFrom(r); err != nil {
			t.Errorf("server: %v", err)
		}
		if _, err := args.ReadFrom(r); err != nil || r.Len() != 0 {
			t.Errorf("server: COMPOUND4args: %v, %d bytes left", err, r.Len())
		}
		if args.Tag != "t" || args.Minorversion != 1 || !reflect.DeepEqual(args.Argarray, ops) {
			t.Errorf("server: args %+v", args)
		}
		var b bytes.Buffer
		if _, err := want.WriteTo(&b); err != nil {
			t.Errorf("server: %v", err)
		}
		return mark(acceptedReply(call, 0, b.Bytes()))
	})
	c, err := Dial(testCtx(t, 5*time.Second), addr, Cred{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Compound(testCtx(t, 5*time.Second), 1, "t", ops)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*res, want) {
		t.Fatalf("reply %+v, want %+v", *res, want)
	}
	if err := firstFailure(res); !IsStatus(err, nfsv4.NFS4ERR_DENIED) || err.(*StatusError).Op != nfsv4.OP_LOCK {
		t.Fatalf("first failure %v", err)
	}
}

func TestCheckCompound(t *testing.T) {
	ops := []nfsv4.NfsArgop4{&nfsv4.NfsArgop4_OP_PUTROOTFH{}, &nfsv4.NfsArgop4_OP_GETFH{}}
	ok := func(fh string) nfsv4.NfsResop4 {
		return &nfsv4.NfsResop4_OP_GETFH{Opgetfh: &nfsv4.Getfh4res_NFS4_OK{Resok4: nfsv4.Getfh4resok{Object: []byte(fh)}}}
	}
	root := &nfsv4.NfsResop4_OP_PUTROOTFH{Opputrootfh: nfsv4.Putrootfh4res{}}
	bad := &nfsv4.NfsResop4_OP_PUTROOTFH{Opputrootfh: nfsv4.Putrootfh4res{Status: nfsv4.NFS4ERR_WRONGSEC}}
	for _, tc := range []struct {
		name string
		res  nfsv4.Compound4res
		ok   bool
	}{
		{"good", nfsv4.Compound4res{Tag: "x", Resarray: []nfsv4.NfsResop4{root, ok("f")}}, true},
		{"stopped", nfsv4.Compound4res{Status: nfsv4.NFS4ERR_WRONGSEC, Tag: "x", Resarray: []nfsv4.NfsResop4{bad}}, true},
		{"tag", nfsv4.Compound4res{Tag: "y", Resarray: []nfsv4.NfsResop4{root, ok("f")}}, false},
		{"order", nfsv4.Compound4res{Tag: "x", Resarray: []nfsv4.NfsResop4{ok("f"), root}}, false},
		{"went on", nfsv4.Compound4res{Status: nfsv4.NFS4_OK, Tag: "x", Resarray: []nfsv4.NfsResop4{bad, ok("f")}}, false},
		{"status", nfsv4.Compound4res{Status: nfsv4.NFS4ERR_IO, Tag: "x", Resarray: []nfsv4.NfsResop4{root, ok("f")}}, false},
		{"too many", nfsv4.Compound4res{Tag: "x", Resarray: []nfsv4.NfsResop4{root, ok("f"), ok("g")}}, false},
		{"empty ok", nfsv4.Compound4res{Tag: "x"}, false},
	} {
		err := CheckCompound("x", ops, &tc.res)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrMalformed)) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestOpStatus(t *testing.T) {
	for _, tc := range []struct {
		r    nfsv4.NfsResop4
		want nfsv4.Nfsstat4
	}{
		{&nfsv4.NfsResop4_OP_LOOKUP{Oplookup: nfsv4.Lookup4res{Status: nfsv4.NFS4ERR_NOENT}}, nfsv4.NFS4ERR_NOENT},
		{&nfsv4.NfsResop4_OP_LOCK{Oplock: &nfsv4.Lock4res_NFS4ERR_DENIED{}}, nfsv4.NFS4ERR_DENIED},
		{&nfsv4.NfsResop4_OP_LOCK{Oplock: &nfsv4.Lock4res_default{Status: nfsv4.NFS4ERR_GRACE}}, nfsv4.NFS4ERR_GRACE},
		{&nfsv4.NfsResop4_OP_OPEN{Opopen: &nfsv4.Open4res_NFS4_OK{}}, nfsv4.NFS4_OK},
		{&nfsv4.NfsResop4_OP_SEQUENCE{Opsequence: &nfsv4.Sequence4res_default{SrStatus: nfsv4.NFS4ERR_BADSESSION}}, nfsv4.NFS4ERR_BADSESSION},
		{&nfsv4.NfsResop4_OP_DESTROY_SESSION{OpdestroySession: nfsv4.DestroySession4res{DsrStatus: nfsv4.NFS4ERR_STALE_CLIENTID}}, nfsv4.NFS4ERR_STALE_CLIENTID},
		{&nfsv4.NfsResop4_OP_SETATTR{Opsetattr: nfsv4.Setattr4res{Status: nfsv4.NFS4ERR_ROFS}}, nfsv4.NFS4ERR_ROFS},
		{&nfsv4.NfsResop4_OP_EXCHANGE_ID{OpexchangeId: &nfsv4.ExchangeId4res_default{EirStatus: nfsv4.NFS4ERR_CLID_INUSE}}, nfsv4.NFS4ERR_CLID_INUSE},
		{&nfsv4.NfsResop4_OP_ILLEGAL{Opillegal: nfsv4.Illegal4res{Status: nfsv4.NFS4ERR_OP_ILLEGAL}}, nfsv4.NFS4ERR_OP_ILLEGAL},
	} {
		if got := OpStatus(tc.r); got != tc.want {
			t.Errorf("%T: %s, want %s", tc.r, StatusName(got), StatusName(tc.want))
		}
	}
}
