package nfs

import (
	"bytes"
	"testing"

	"github.com/efsd/efsd/internal/efstest/nfsclient"
)

// A WRITE is made as durable as its stable_how asks, and its reply says
// which (go-nfs alone always says FILE_SYNC); WRITE and COMMIT replies
// carry one verifier, and a server started again over the same data has
// another, so that a client resends what it wrote UNSTABLE.
func TestWriteStability(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start("")
	c := mustMount(t, addr, "/", rootAuth)
	c.writeFile(t, "f", nil, 0o644)
	_, fh, err := c.Lookup("f")
	if err != nil {
		t.Fatal(err)
	}
	var verf uint64
	var want []byte
	for i, how := range []uint32{nfsclient.Unstable, nfsclient.DataSync, nfsclient.FileSync, nfsclient.Unstable} {
		data := bytes.Repeat([]byte{byte('a' + i)}, 1000)
		w, st, err := nfsclient.Write(c.Target, c.auth, fh, uint64(len(want)), data, how)
		if err != nil || st != 0 {
			t.Fatalf("WRITE stable_how %d: status %d, %v", how, st, err)
		}
		if w.Committed != how || w.Count != uint32(len(data)) {
			t.Errorf("WRITE stable_how %d answered committed %d, count %d", how, w.Committed, w.Count)
		}
		if i > 0 && w.Verf != verf {
			t.Errorf("verifier changed within one server's life: %x then %x", verf, w.Verf)
		}
		verf = w.Verf
		want = append(want, data...)
	}
	if got, st, err := c.readFH(fh); err != nil || st != 0 || !bytes.Equal(got, want) {
		t.Fatalf("read back after unstable writes: status %d, %v, %d bytes (want %d)", st, err, len(got), len(want))
	}
	cv, st, err := nfsclient.Commit(c.Target, c.auth, fh)
	if err != nil || st != 0 || cv != verf {
		t.Fatalf("COMMIT: status %d, %v, verifier %x (WRITEs had %x)", st, err, cv, verf)
	}

	// Another server over the same data and handles: the verifier changes.
	_, addr2 := e.start("")
	c2 := mustMount(t, addr2, "/", rootAuth)
	cv2, st, err := nfsclient.Commit(c2.Target, c2.auth, fh)
	if err != nil || st != 0 {
		t.Fatalf("COMMIT at a second server: status %d, %v", st, err)
	}
	if cv2 == verf {
		t.Errorf("a server started again has the same write verifier %x: clients would not resend unstable data", verf)
	}
}
