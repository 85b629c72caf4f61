package replication_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/efsd/efsd/internal/daemon"
	internalefs "github.com/efsd/efsd/internal/efs"
	"github.com/efsd/efsd/internal/efstest"
)

// inotifyInstances lists this process's inotify file descriptors.
func inotifyInstances(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	var fds []string
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && l == "anon_inode:inotify" {
			fds = append(fds, e.Name())
		}
	}
	return fds
}

// kernelWatches counts the watches the kernel holds on the instances of
// this process opened since before.
func kernelWatches(t *testing.T, before []string) int {
	t.Helper()
	old := map[string]bool{}
	for _, fd := range before {
		old[fd] = true
	}
	n := 0
	for _, fd := range inotifyInstances(t) {
		if old[fd] {
			continue
		}
		f, err := os.Open("/proc/self/fdinfo/" + fd)
		if err != nil {
			continue // closed meanwhile
		}
		for s := bufio.NewScanner(f); s.Scan(); {
			if strings.HasPrefix(s.Text(), "inotify wd:") {
				n++
			}
		}
		f.Close()
	}
	return n
}

// More replications than the host's default inotify instance limit (128)
// run on one instance, and inotify still wakes each of them. (n is just
// above the limit: creating replications is slow under -race; the hub's
// own test subscribes 200 trees.)
func TestManyReplicationsShareOneInotifyInstance(t *testing.T) {
	const n = 130
	before := inotifyInstances(t)
	srv := efstest.Start(t, efstest.WithConfig(func(c *daemon.Config) { c.ReplicationRescanInterval = time.Hour }))
	c := srv.Client(efstest.AccountA, region)
	ctx := context.Background()
	ids := make([]string, n)
	for i := range ids {
		out, err := c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String(fmt.Sprintf("many-%d", i))})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = *out.FileSystemId
	}
	efstest.Eventually(t, 60*time.Second, "sources available", func() bool {
		p := efs.NewDescribeFileSystemsPaginator(c, &efs.DescribeFileSystemsInput{})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, fs := range page.FileSystems {
				if fs.LifeCycleState != types.LifeCycleStateAvailable {
					return false
				}
			}
		}
		return true
	})
	// Created by a few clients at once: each creation waits for the
	// store's durable write.
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for k := range 8 {
		wg.Go(func() {
			for i := k; i < n; i += 8 {
				_, err := c.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{SourceFileSystemId: aws.String(ids[i]),
					Destinations: []types.DestinationToCreate{{Region: aws.String(region)}}})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	dsts := map[string]string{}
	efstest.Eventually(t, 120*time.Second, "every replication replicated once", func() bool {
		p := efs.NewDescribeReplicationConfigurationsPaginator(c, &efs.DescribeReplicationConfigurationsInput{})
		done := 0
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page.Replications {
				d := r.Destinations[0]
				if d.Status == types.ReplicationStatusEnabled && d.LastReplicatedTimestamp != nil {
					dsts[*r.SourceFileSystemId] = *d.FileSystemId
					done++
				}
			}
		}
		return done == n
	})
	if got := len(inotifyInstances(t)) - len(before); got > 1 {
		t.Fatalf("%d inotify instances open for %d replications, want 1", got, n)
	}
	if s := srv.Replication().Stats(); s.Instances != 1 || s.WatchedFileSystems != n || s.WatchLimitedFileSystems != 0 {
		t.Fatalf("stats %+v", s)
	}
	// With an hour between rescans only inotify carries these changes.
	dir := func(id string) string {
		return srv.Volumes().Path(internalefs.FSKey{Account: efstest.AccountA.Account, Region: region, ID: id})
	}
	for _, i := range []int{0, n / 2, n - 1} {
		os.WriteFile(filepath.Join(dir(ids[i]), "changed"), []byte("x"), 0o644)
	}
	for _, i := range []int{0, n / 2, n - 1} {
		efstest.Eventually(t, 30*time.Second, "change replicated", func() bool {
			return efstest.TreeDiff(dir(ids[i]), dir(dsts[ids[i]])) == ""
		})
	}
}

// A source tree with more directories than replicationMaxWatchesPerFileSystem
// is reported limited, and changes in its unwatched directories still
// replicate, by the periodic rescan.
func TestWatchCapFallsBackToRescan(t *testing.T) {
	srv, c, src, srcDir, dstDir := setup(t, efstest.WithConfig(func(c *daemon.Config) {
		c.ReplicationMaxWatchesPerFileSystem = 2
		c.ReplicationRescanInterval = 300 * time.Millisecond
	}))
	for _, d := range []string{"a", "b", "c"} {
		os.Mkdir(filepath.Join(srcDir, d), 0o755)
	}
	waitStatus(t, c, src, types.ReplicationStatusEnabled, "", identical(srcDir, dstDir))
	efstest.Eventually(t, 10*time.Second, "file system limited", func() bool {
		s := srv.Replication().Stats()
		return s.WatchLimitedFileSystems == 1 && s.WatchedDirs == 2 && s.WatchLimitHits == 1
	})
	// Written in the last directory, which the cap left unwatched.
	os.WriteFile(filepath.Join(srcDir, "c", "unwatched"), []byte("found by rescan"), 0o644)
	waitStatus(t, c, src, types.ReplicationStatusEnabled, "", identical(srcDir, dstDir))
	if s := srv.Replication().Stats(); s.WatchLimitHits != 1 {
		t.Fatalf("the limit was hit again (%+v): it is logged and counted once per file system", s)
	}
}

// Stopping a replication removes its watches from the kernel.
func TestStoppedReplicationRemovesWatches(t *testing.T) {
	before := inotifyInstances(t)
	srv, c, src, srcDir, dstDir := setup(t)
	os.MkdirAll(filepath.Join(srcDir, "x", "y"), 0o755)
	waitStatus(t, c, src, types.ReplicationStatusEnabled, "", identical(srcDir, dstDir))
	efstest.Eventually(t, 10*time.Second, "directories watched", func() bool {
		return srv.Replication().Stats().WatchedDirs == 3 && kernelWatches(t, before) == 3
	})
	if _, err := c.DeleteReplicationConfiguration(context.Background(), &efs.DeleteReplicationConfigurationInput{SourceFileSystemId: aws.String(src)}); err != nil {
		t.Fatal(err)
	}
	efstest.Eventually(t, 10*time.Second, "watches removed", func() bool {
		s := srv.Replication().Stats()
		return s.WatchedDirs == 0 && s.WatchedFileSystems == 0 && kernelWatches(t, before) == 0
	})
}
