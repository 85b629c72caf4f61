package replication_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/efsd/efsd/internal/daemon"
	"github.com/efsd/efsd/internal/efstest"
	"github.com/efsd/efsd/internal/replication"
)

// corrupt rewrites a destination file behind efsd's back, keeping its size
// and mtime.
func corrupt(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bytes.Repeat([]byte{'#'}, int(fi.Size())), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
}

// noPasses leaves scrubs as the only passes after the first: no inotify,
// no rescan within the test.
func noPasses(c *daemon.Config) {
	c.ReplicationNoWatch = true
	c.ReplicationRescanInterval = time.Hour
}

// TestPeriodicScrubRepairs: with a scrub interval, a corrupted destination
// file is found and repaired without any other pass running.
func TestPeriodicScrubRepairs(t *testing.T) {
	_, _, _, srcDir, dstDir := setup(t, efstest.WithConfig(func(c *daemon.Config) {
		noPasses(c)
		c.ReplicationScrubInterval = 300 * time.Millisecond
	}))
	corrupt(t, filepath.Join(dstDir, "seed"))
	efstest.Eventually(t, 10*time.Second, "the scrub to repair the destination", identical(srcDir, dstDir))
}

// TestScrubOnDemand: Manager.Scrub compares every file, repairs the
// corrupted one, streams progress and reports what it read.
func TestScrubOnDemand(t *testing.T) {
	srv, _, src, srcDir, dstDir := setup(t, efstest.WithConfig(func(c *daemon.Config) {
		noPasses(c)
		c.ReplicationScrubInterval = -1
	}))
	corrupt(t, filepath.Join(dstDir, "seed"))
	var progress int
	res, err := srv.Daemon.Replication().Scrub(context.Background(), src, time.Millisecond, func(replication.ScrubProgress) { progress++ })
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Err != nil || !res[0].Done || res[0].Differences != 1 || res[0].FilesCompared != 1 || res[0].BytesRead() != 2*4+4 {
		t.Fatalf("scrub results %+v", res)
	}
	if progress < 1 {
		t.Errorf("progress called %d times", progress)
	}
	if d := efstest.TreeDiff(srcDir, dstDir); d != "" {
		t.Fatalf("not repaired: %s", d)
	}
	if _, err := srv.Daemon.Replication().Scrub(context.Background(), "fs-00000000", time.Second, nil); err == nil {
		t.Error("scrub of an unknown configuration succeeded")
	}
}
