package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsefs "github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/efsd/efsd/internal/daemon"
	"github.com/efsd/efsd/internal/efs"
	"github.com/efsd/efsd/internal/efstest"
	"github.com/efsd/efsd/internal/efstest/ports"
	"github.com/efsd/efsd/internal/peer"
	"github.com/efsd/efsd/internal/remotesync"
)

func freeAddr(t *testing.T) string { return fmt.Sprintf("127.0.0.1:%d", ports.Free(t)) }

func identity(t *testing.T, dataDir string) *peer.Identity {
	t.Helper()
	id, err := peer.LoadIdentity(filepath.Join(dataDir, "peer"))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// linked is deployment a (us-east-1) replicating a file system into b
// (eu-west-1), its peer; c is a third identity b also pins (ap-south-1).
type linked struct {
	a, b           *efstest.Server
	idB, idC       *peer.Identity
	peerB          string
	id             string // the configuration
	src            efs.FSKey
	destID         string
	srcDir, dstDir string
}

func link(t *testing.T) *linked {
	t.Helper()
	dirA, dirB, dirC := t.TempDir(), t.TempDir(), t.TempDir()
	idA, idB, idC := identity(t, dirA), identity(t, dirB), identity(t, dirC)
	peerA, peerB := freeAddr(t), freeAddr(t)
	b := efstest.Start(t, efstest.WithConfig(func(c *daemon.Config) {
		c.DataDir, c.Regions, c.PeerListen = dirB, []string{"eu-west-1"}, peerB
		c.ReplicationRescanInterval = 200 * time.Millisecond
		c.Peers = []peer.Config{
			{Name: "a", Endpoint: "https://" + peerA, Regions: []string{"us-east-1"}, CertSHA256: idA.Fingerprint},
			{Name: "c", Endpoint: "https://127.0.0.1:1", Regions: []string{"ap-south-1"}, CertSHA256: idC.Fingerprint},
		}
	}))
	a := efstest.Start(t, efstest.WithConfig(func(c *daemon.Config) {
		c.DataDir, c.Regions, c.PeerListen = dirA, []string{"us-east-1"}, peerA
		c.ReplicationRescanInterval = 200 * time.Millisecond
		c.Peers = []peer.Config{{Name: "b", Endpoint: "https://" + peerB, Regions: []string{"eu-west-1"}, CertSHA256: idB.Fingerprint}}
	}))
	ctx := context.Background()
	ca, cb := a.Client(efstest.AccountA, "us-east-1"), b.Client(efstest.AccountA, "eu-west-1")
	fs, err := ca.CreateFileSystem(ctx, &awsefs.CreateFileSystemInput{CreationToken: aws.String("src"), Encrypted: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	efstest.Eventually(t, 10*time.Second, "source available", func() bool {
		out, err := ca.DescribeFileSystems(ctx, &awsefs.DescribeFileSystemsInput{FileSystemId: fs.FileSystemId})
		return err == nil && out.FileSystems[0].LifeCycleState == types.LifeCycleStateAvailable
	})
	rep, err := ca.CreateReplicationConfiguration(ctx, &awsefs.CreateReplicationConfigurationInput{
		SourceFileSystemId: fs.FileSystemId, Destinations: []types.DestinationToCreate{{Region: aws.String("eu-west-1")}}})
	if err != nil {
		t.Fatal(err)
	}
	l := &linked{a: a, b: b, idB: idB, idC: idC, peerB: peerB, destID: aws.ToString(rep.Destinations[0].FileSystemId),
		src: efs.FSKey{Account: efstest.AccountA.Account, Region: "us-east-1", ID: aws.ToString(fs.FileSystemId)}}
	l.srcDir = a.Volumes().Path(l.src)
	l.dstDir = b.Volumes().Path(efs.FSKey{Account: efstest.AccountA.Account, Region: "eu-west-1", ID: l.destID})
	if err := os.WriteFile(filepath.Join(l.srcDir, "one"), []byte("first"), 0o644); err != nil {
		t.Fatal(err)
	}
	l.converged(t, "first file replicated")
	efstest.Eventually(t, 10*time.Second, "configuration visible at b", func() bool {
		out, err := cb.DescribeReplicationConfigurations(ctx, &awsefs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String(l.destID)})
		return err == nil && len(out.Replications) == 1
	})
	reps, _ := a.Service().Replications(ctx)
	l.id = reps[0].ID
	return l
}

func (l *linked) converged(t *testing.T, what string) {
	t.Helper()
	efstest.Eventually(t, 20*time.Second, what, func() bool { return efstest.TreeDiff(l.srcDir, l.dstDir) == "" })
}

// A pinned peer is trusted with its own configurations only: deployment
// c, a configured peer of b, cannot write into, delete or claim what a's
// configuration holds at b, nor pass itself off as the source of a's
// regions; a's replication carries on untouched.
func TestPeerCannotActForAnotherPeer(t *testing.T) {
	l := link(t)
	ctx := context.Background()
	cb := l.b.Client(efstest.AccountA, "eu-west-1")
	id, destID, src, srcDir := l.id, l.destID, l.src, l.srcDir
	idB, idC, peerB := l.idB, l.idC, l.peerB
	converged := func(what string) { t.Helper(); l.converged(t, what) }

	// c's client, pinning b.
	cSet, err := peer.NewSet([]peer.Config{{Name: "b", Endpoint: "https://" + peerB, Regions: []string{"eu-west-1"}, CertSHA256: idB.Fingerprint}},
		func(r string) bool { return r == "ap-south-1" })
	if err != nil {
		t.Fatal(err)
	}
	c := peer.NewClient(idC, cSet, nil)

	// Writing into a's configuration: gone, nothing written.
	_, err = c.Transport("b", id).RoundTrip(ctx, remotesync.OpBegin, strings.NewReader("{}"))
	var re *remotesync.RemoteError
	if !errors.As(err, &re) || re.Code != remotesync.CodeGone {
		t.Fatalf("c wrote into a's configuration: %v", err)
	}
	// Deleting it: ignored.
	if err := c.Tell(ctx, "b", id, efs.PeerDeleteAll); err != nil {
		t.Fatalf("tell: %v", err)
	}
	if err := c.Tell(ctx, "b", id, efs.PeerDeleteLocal); err != nil {
		t.Fatalf("tell: %v", err)
	}
	// Claiming a's source region, or a's destination.
	_, err = c.CreateDestination(ctx, "b", &efs.RemoteCreate{ID: "rep-0c", Source: src, DestAccount: src.Account,
		Dest: efs.DestinationInput{Region: "eu-west-1", FileSystemID: destID}})
	var e *efs.Error
	if !errors.As(err, &e) || e.Code != efs.BadRequest {
		t.Fatalf("c posing as the source's deployment: %v", err)
	}
	_, err = c.CreateDestination(ctx, "b", &efs.RemoteCreate{ID: "rep-0c",
		Source: efs.FSKey{Account: src.Account, Region: "ap-south-1", ID: "fs-0c"}, DestAccount: src.Account,
		Dest: efs.DestinationInput{Region: "eu-west-1", FileSystemID: destID}})
	if !errors.As(err, &e) || e.Code == "" {
		t.Fatalf("c claimed a's destination: %v", err)
	}
	// The same configuration ID as a's, from c: refused, a's untouched.
	_, err = c.CreateDestination(ctx, "b", &efs.RemoteCreate{ID: id,
		Source: efs.FSKey{Account: src.Account, Region: "ap-south-1", ID: "fs-0c"}, DestAccount: src.Account,
		Dest: efs.DestinationInput{Region: "eu-west-1"}})
	if !errors.As(err, &e) || e.Code != efs.ReplicationAlreadyExists {
		t.Fatalf("c took a's configuration ID: %v", err)
	}

	// a's replication carries on, at both sides.
	if err := os.WriteFile(filepath.Join(srcDir, "two"), []byte("second"), 0o644); err != nil {
		t.Fatal(err)
	}
	converged("second file replicated after the attacks")
	out, err := cb.DescribeReplicationConfigurations(ctx, &awsefs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String(destID)})
	if err != nil || out.Replications[0].Destinations[0].Status != types.ReplicationStatusEnabled {
		t.Fatalf("b's side after the attacks: %+v %v", out, err)
	}
	fsB, err := cb.DescribeFileSystems(ctx, &awsefs.DescribeFileSystemsInput{FileSystemId: aws.String(destID)})
	if err != nil || fsB.FileSystems[0].FileSystemProtection.ReplicationOverwriteProtection != types.ReplicationOverwriteProtectionReplicating {
		t.Fatalf("b's destination after the attacks: %+v %v", fsB, err)
	}
}

// LOCAL_CONFIGURATION_ONLY at the source, then at the destination: the
// destination reports the source side gone, stays read-only until deleted
// there too, and is then released (writable), keeping its data.
func TestLocalDeletionsOnBothSides(t *testing.T) {
	l := link(t)
	ctx := context.Background()
	ca, cb := l.a.Client(efstest.AccountA, "us-east-1"), l.b.Client(efstest.AccountA, "eu-west-1")
	if _, err := ca.DeleteReplicationConfiguration(ctx, &awsefs.DeleteReplicationConfigurationInput{
		SourceFileSystemId: aws.String(l.src.ID), DeletionMode: types.DeletionModeLocalConfigurationOnly}); err != nil {
		t.Fatal(err)
	}
	efstest.Eventually(t, 10*time.Second, "b reports the source side deleted", func() bool {
		out, err := cb.DescribeReplicationConfigurations(ctx, &awsefs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String(l.destID)})
		return err == nil && out.Replications[0].Destinations[0].Status == types.ReplicationStatusError &&
			strings.Contains(aws.ToString(out.Replications[0].Destinations[0].StatusMessage), "source side")
	})
	protection := func() types.ReplicationOverwriteProtection {
		out, err := cb.DescribeFileSystems(ctx, &awsefs.DescribeFileSystemsInput{FileSystemId: aws.String(l.destID)})
		if err != nil {
			t.Fatal(err)
		}
		return out.FileSystems[0].FileSystemProtection.ReplicationOverwriteProtection
	}
	if p := protection(); p != types.ReplicationOverwriteProtectionReplicating {
		t.Fatalf("b's destination is %s before it was deleted there", p)
	}
	if _, err := cb.DeleteReplicationConfiguration(ctx, &awsefs.DeleteReplicationConfigurationInput{
		SourceFileSystemId: aws.String(l.destID), DeletionMode: types.DeletionModeLocalConfigurationOnly}); err != nil {
		t.Fatal(err)
	}
	efstest.Eventually(t, 10*time.Second, "b's destination released", func() bool {
		return protection() == types.ReplicationOverwriteProtectionEnabled
	})
	if _, err := cb.DescribeReplicationConfigurations(ctx, &awsefs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String(l.destID)}); err == nil {
		t.Fatal("b still has the configuration")
	}
	if b, err := os.ReadFile(filepath.Join(l.dstDir, "one")); err != nil || string(b) != "first" {
		t.Fatalf("b's data: %q %v", b, err)
	}
}

// A source file rewritten while it is being sent is not a failure: the
// configuration stays ENABLED (a local pass copies whatever it reads, too)
// and the destination converges once the writes stop.
func TestSourceRewrittenWhileSent(t *testing.T) {
	l := link(t)
	ctx := context.Background()
	ca := l.a.Client(efstest.AccountA, "us-east-1")
	buf := make([]byte, 24<<20)
	stop := time.Now().Add(4 * time.Second)
	for i := 0; time.Now().Before(stop); i++ {
		for j := range buf {
			buf[j] = byte(i*7 + j*13 + j>>9)
		}
		// In place, as a database or a log does: same inode, new bytes.
		f, err := os.OpenFile(filepath.Join(l.srcDir, "hot"), os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.WriteAt(buf, 0)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		out, err := ca.DescribeReplicationConfigurations(ctx, &awsefs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String(l.src.ID)})
		if err != nil {
			t.Fatal(err)
		}
		if d := out.Replications[0].Destinations[0]; d.Status != types.ReplicationStatusEnabled {
			t.Fatalf("status %s while the source was written: %s", d.Status, aws.ToString(d.StatusMessage))
		}
	}
	l.converged(t, "the rewritten file replicated once the writes stopped")
}
