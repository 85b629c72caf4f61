package crossdeploy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/efsd/efsd/internal/efstest"
	"github.com/efsd/efsd/internal/efstest/deploy"
)

// partitionLength is how long the link is cut in TestFaultsOnThePeerLink:
// 30 s as the issue asks; EFSD_XDEPLOY_PARTITION (a Go duration) changes it.
func partitionLength(t *testing.T) time.Duration {
	if s := os.Getenv("EFSD_XDEPLOY_PARTITION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 4*time.Second {
			t.Fatalf("EFSD_XDEPLOY_PARTITION=%q: want a duration of at least 4s", s)
		}
		return d
	}
	return 30 * time.Second
}

// sinceIn parses the RFC 3339 time after prefix+" since " in msg.
func sinceIn(msg, prefix string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(msg, prefix+" since ")
	if !ok {
		return time.Time{}, false
	}
	if i := strings.IndexAny(rest, " ;,"); i >= 0 {
		rest = rest[:i]
	}
	ts, err := time.Parse(time.RFC3339, strings.TrimSuffix(rest, "."))
	return ts, err == nil
}

// TestFaultsOnThePeerLink: A's traffic to B goes through a proxy that adds
// latency, caps bandwidth, cuts connections after N bytes, partitions the
// link and resets connections. After each fault the trees are identical
// again and the status ENABLED again, by themselves; during the partition
// both sides say PAUSED and why; after a cut the transfer resumes instead
// of starting the file over.
func TestFaultsOnThePeerLink(t *testing.T) {
	t.Parallel()
	p := newPair(t, true)
	srcID := *createFS(t, p.ca, "faults-src").FileSystemId
	srcDir := p.a.VolumePath(efstest.AccountA.Account, regionA, srcID)
	writeTree(t, srcDir, 20, 10)
	dstID := replicate(t, p.ca, srcID, types.DestinationToCreate{Region: aws.String(regionB)})
	_, dstDir := p.volumes(srcID, dstID)
	converge(t, p.cb, dstID, srcDir, dstDir, time.Now(), 60*time.Second)
	n := 0
	settled := func(t *testing.T, timeout time.Duration) {
		t.Helper()
		converge(t, p.cb, dstID, srcDir, dstDir, time.Now(), timeout)
		waitStatus(t, p.ca, srcID, types.ReplicationStatusEnabled, 10*time.Second)
	}
	step := func(t *testing.T) {
		t.Helper()
		n++
		change(t, srcDir, n)
	}

	t.Run("latency 50-200ms", func(t *testing.T) {
		tx := p.px.Latency(125*time.Millisecond, 75*time.Millisecond)
		defer tx.Remove()
		step(t)
		settled(t, 60*time.Second)
	})

	t.Run("bandwidth 10 Mbit/s", func(t *testing.T) {
		tx := p.px.Bandwidth(10)
		defer tx.Remove()
		step(t)
		writeRandom(t, staging(p.a), filepath.Join(srcDir, "two-mib.bin"), 2<<20, 21)
		start := time.Now()
		settled(t, 90*time.Second)
		t.Logf("2 MiB and a few changes at 10 Mbit/s replicated in %v", time.Since(start).Round(time.Millisecond))
	})

	t.Run("cut mid-file resumes", func(t *testing.T) {
		const size, cutAt, slack = 64 << 20, 40 << 20, 8 << 20
		before := sent(t, p.a)
		// Every connection from A to B is closed after 40 MiB: a transfer
		// that started the file over after each cut would never end.
		tx := p.px.CutAfter(cutAt, deploy.Upstream)
		defer tx.Remove()
		writeRandom(t, staging(p.a), filepath.Join(srcDir, "large.bin"), size, 22)
		start := time.Now()
		settled(t, 180*time.Second)
		delta := sent(t, p.a) - before
		t.Logf("64 MiB file replicated through cuts at 40 MiB in %v; %.1f MiB sent", time.Since(start).Round(time.Millisecond), delta/(1<<20))
		if delta >= size+slack {
			t.Fatalf("%s grew by %.1f MiB for a 64 MiB file cut at 40 MiB; want < %d MiB (a resumed transfer, not a recopy)",
				sentBytes, delta/(1<<20), (size+slack)>>20)
		}
		if delta < size*9/10 {
			t.Fatalf("%s grew by only %.1f MiB for 64 MiB of random data", sentBytes, delta/(1<<20))
		}
	})

	t.Run("partition", func(t *testing.T) {
		length := partitionLength(t)
		cut := time.Now()
		began := cut.UTC().Truncate(time.Second)
		tx := p.px.Partition(deploy.Drop, length)
		healAt := time.Now().Add(length)
		step(t)
		// Both sides notice within the partition and say since when.
		const toB, fromA = "Destination deployment 'b' unreachable", "Source deployment 'a' not heard from"
		for _, side := range []struct {
			name   string
			c      *efs.Client
			id     string
			prefix string
		}{{"A", p.ca, srcID, toB}, {"B", p.cb, dstID, fromA}} {
			c := side.c
			var msg string
			poll(t, time.Until(healAt), 200*time.Millisecond, side.name+" PAUSED: "+side.prefix, func() (bool, string) {
				d, state := destination(t, c, side.id)
				if d == nil {
					return false, state
				}
				msg = aws.ToString(d.StatusMessage)
				return d.Status == types.ReplicationStatusPaused && strings.HasPrefix(msg, side.prefix+" since "), state
			})
			since, ok := sinceIn(msg, side.prefix)
			if !ok || since.Before(began.Add(-3*rescan)) || since.After(time.Now()) {
				t.Errorf("%s: %q: want the RFC 3339 UTC time the link went down (about %s)", side.name, msg, began.Format(time.RFC3339))
			}
			t.Logf("%s during the partition: PAUSED %q", side.name, msg)
		}
		if time.Now().After(healAt) {
			t.Fatal("the partition healed before both sides said PAUSED")
		}
		// No pass that started after the cut can have completed.
		for _, side := range []struct {
			name string
			c    *efs.Client
			id   string
		}{{"A", p.ca, srcID}, {"B", p.cb, dstID}} {
			if d, state := destination(t, side.c, side.id); d == nil || d.LastReplicatedTimestamp != nil && d.LastReplicatedTimestamp.After(cut) {
				t.Errorf("%s during the partition (cut at %s): %s", side.name, cut.Format(time.RFC3339Nano), state)
			}
		}
		for time.Now().Before(healAt) {
			time.Sleep(100 * time.Millisecond)
		}
		tx.Remove()
		start := time.Now()
		settled(t, 60*time.Second)
		waitStatus(t, p.cb, dstID, types.ReplicationStatusEnabled, 10*time.Second)
		t.Logf("%v partition: ENABLED and identical %v after it healed", length, time.Since(start).Round(time.Millisecond))
	})

	t.Run("reset storm", func(t *testing.T) {
		const storm = 5 * time.Second
		p.px.Resets(1).RemoveAfter(storm)
		end := time.Now().Add(storm)
		for i := 0; time.Now().Before(end); i++ {
			step(t)
			must(t, os.WriteFile(filepath.Join(srcDir, fmt.Sprintf("storm-%d", i)), []byte("storm\n"), 0o644))
			time.Sleep(500 * time.Millisecond)
		}
		settled(t, 60*time.Second)
	})
}
