package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/efsd/efsd/internal/efstest"
	"github.com/efsd/efsd/internal/efstest/deploy"
	"github.com/efsd/efsd/internal/efstest/nfsclient"
)

// TestKill9NFSUnstableWrites: a client writes UNSTABLE through a mount
// target of the real binary, which is killed with SIGKILL before COMMIT;
// after the restart the write verifier is another one, so the client knows
// to send its unstable data again. Once COMMIT answers with the verifier
// of the WRITEs, the data survives another kill -9.
func TestKill9NFSUnstableWrites(t *testing.T) {
	const region = "us-east-1"
	acct := efstest.AccountA
	d := deploy.Start(t, deploy.Config{Name: "nfs", Regions: []string{region}})
	c := d.Client(acct, region)
	ctx := context.Background()
	fs, err := c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String("unstable")})
	if err != nil {
		t.Fatal(err)
	}
	id := *fs.FileSystemId
	efstest.Eventually(t, 20*time.Second, id+" available", func() bool {
		out, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{FileSystemId: &id})
		return err == nil && out.FileSystems[0].LifeCycleState == types.LifeCycleStateAvailable
	})
	n := d.Network(acct.Account, region)
	mt, err := c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: &id, SubnetId: &n.Subnets[0].SubnetId})
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("%s:%d", *mt.IpAddress, d.NFSPort)
	mountRoot := func() *nfsclient.Conn {
		t.Helper()
		var conn *nfsclient.Conn
		efstest.Eventually(t, 20*time.Second, "mount "+addr, func() bool {
			conn, err = nfsclient.Mount(addr, "/", nfsclient.AuthUnix(0, 0))
			return err == nil
		})
		t.Cleanup(conn.Close)
		return conn
	}

	conn := mountRoot()
	f, err := conn.OpenFile("data", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, fh, err := conn.Lookup("data")
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("unstable bytes, then committed. "), 4096)
	write := func(conn *nfsclient.Conn) uint64 {
		t.Helper()
		var verf uint64
		for off := 0; off < len(data); off += 32 << 10 {
			w, st, err := nfsclient.Write(conn.Target, conn.Auth, fh, uint64(off), data[off:min(off+32<<10, len(data))], nfsclient.Unstable)
			if err != nil || st != 0 {
				t.Fatalf("WRITE at %d: status %d, %v", off, st, err)
			}
			if w.Committed != nfsclient.Unstable {
				t.Fatalf("UNSTABLE WRITE answered committed %d", w.Committed)
			}
			if off > 0 && w.Verf != verf {
				t.Fatalf("verifier changed between WRITEs of one run: %x, %x", verf, w.Verf)
			}
			verf = w.Verf
		}
		return verf
	}
	before := write(conn)

	d.Kill()
	d.Restart()
	conn = mountRoot()
	after, st, err := nfsclient.Commit(conn.Target, conn.Auth, fh) // the handle outlives the restart
	if err != nil || st != 0 {
		t.Fatalf("COMMIT after the restart: status %d, %v", st, err)
	}
	if after == before {
		t.Fatalf("write verifier %x unchanged across kill -9: a client would not resend its unstable writes", before)
	}
	// The client resends, and commits with the verifier of its WRITEs.
	if v := write(conn); v != after {
		t.Fatalf("WRITEs after the restart have verifier %x, COMMIT had %x", v, after)
	}
	if v, st, err := nfsclient.Commit(conn.Target, conn.Auth, fh); err != nil || st != 0 || v != after {
		t.Fatalf("COMMIT: status %d, %v, verifier %x (want %x)", st, err, v, after)
	}

	d.Kill()
	d.Restart()
	conn = mountRoot()
	got, st, err := nfsclient.ReadAll(conn.Target, conn.Auth, fh)
	if err != nil || st != 0 || !bytes.Equal(got, data) {
		t.Fatalf("after COMMIT and kill -9: status %d, %v, %d bytes (want %d)", st, err, len(got), len(data))
	}
	if onDisk, err := os.ReadFile(filepath.Join(d.VolumePath(acct.Account, region, id), "data")); err != nil || !bytes.Equal(onDisk, data) {
		t.Fatalf("the volume's file after COMMIT and kill -9: %d bytes, %v", len(onDisk), err)
	}
}
