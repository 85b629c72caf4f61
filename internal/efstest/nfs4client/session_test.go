package nfs4client

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/buildbarn/go-xdr/pkg/protocols/nfsv4"
	"github.com/buildbarn/go-xdr/pkg/protocols/rpcv2"
)

// slotServer is a fake NFSv4.1 server of one session with one slot: it
// answers COMPOUNDs of SEQUENCE and PUTROOTFH and can lose a call,
// before or after running it, as a network or a crash would.
type slotServer struct {
	mu      sync.Mutex
	last    uint32 // the slot's last sequence ID run
	ran     int    // PUTROOTFHs run
	loseRun bool   // run the next call, send no reply
	loseNew bool   // drop the next call unrun
}

func (f *slotServer) reply(call []byte) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := bytes.NewReader(call)
	var msg rpcv2.RpcMsg
	var args nfsv4.Compound4args
	if _, err := msg.ReadFrom(r); err != nil {
		return nil
	}
	if _, err := args.ReadFrom(r); err != nil {
		return nil
	}
	if f.loseNew {
		f.loseNew = false
		return nil
	}
	res := nfsv4.Compound4res{Tag: args.Tag}
	seq := args.Argarray[0].(*nfsv4.NfsArgop4_OP_SEQUENCE).Opsequence
	switch seq.SaSequenceid {
	case f.last + 1:
		f.last++
		res.Resarray = append(res.Resarray, &nfsv4.NfsResop4_OP_SEQUENCE{Opsequence: &nfsv4.Sequence4res_NFS4_OK{SrResok4: nfsv4.Sequence4resok{
			SrSessionid: seq.SaSessionid, SrSequenceid: seq.SaSequenceid,
		}}})
		for range args.Argarray[1:] {
			f.ran++
			res.Resarray = append(res.Resarray, &nfsv4.NfsResop4_OP_PUTROOTFH{})
		}
	default:
		res.Status = nfsv4.NFS4ERR_SEQ_MISORDERED
		res.Resarray = append(res.Resarray, &nfsv4.NfsResop4_OP_SEQUENCE{Opsequence: &nfsv4.Sequence4res_default{SrStatus: res.Status}})
	}
	if f.loseRun {
		f.loseRun = false
		return nil
	}
	var b bytes.Buffer
	res.WriteTo(&b)
	return mark(acceptedReply(call, 0, b.Bytes()))
}

// TestSessionSettlesLostCalls checks that after a call whose reply was
// lost the session finds the right sequence ID, whether the server ran
// the call or not, and runs the next call once.
func TestSessionSettlesLostCalls(t *testing.T) {
	f := &slotServer{}
	addr := fakeServer(t, f.reply)
	c, err := Dial(testCtx(t, 5*time.Second), addr, Cred{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := newSession(c, 1, "owner", nil)
	s.sessionID, s.seq = nfsv4.Sessionid4{7}, 1
	op := &nfsv4.NfsArgop4_OP_PUTROOTFH{}

	for _, tc := range []struct {
		name    string
		lose    func()
		wantRan int // calls run by the lost one and the next
	}{
		{"lost reply", func() { f.loseRun = true }, 2},
		{"lost call", func() { f.loseNew = true }, 1},
	} {
		f.mu.Lock()
		tc.lose()
		ran := f.ran
		f.mu.Unlock()
		if _, err := s.Do(testCtx(t, 200*time.Millisecond), op); err == nil {
			t.Fatalf("%s: call succeeded", tc.name)
		}
		res, err := s.Do(testCtx(t, 5*time.Second), op)
		if err != nil || len(res) != 1 {
			t.Fatalf("%s: next call: %v %v", tc.name, res, err)
		}
		f.mu.Lock()
		if f.ran-ran != tc.wantRan || s.seq != f.last+1 {
			t.Fatalf("%s: %d calls ran, want %d; client seq %d, server's last %d", tc.name, f.ran-ran, tc.wantRan, s.seq, f.last)
		}
		f.mu.Unlock()
	}
	// A misordered SEQUENCE is a *StatusError with no results, and the
	// client's sequence ID stays.
	s.seq += 5
	res, err := s.Do(testCtx(t, 5*time.Second), op)
	if !IsStatus(err, nfsv4.NFS4ERR_SEQ_MISORDERED) || len(res) != 0 || err.(*StatusError).Op != nfsv4.OP_SEQUENCE || s.seq != f.last+6 {
		t.Fatalf("misordered: %v %v seq %d", res, err, s.seq)
	}
}
