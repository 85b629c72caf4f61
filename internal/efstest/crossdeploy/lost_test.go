package crossdeploy_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/efsd/efsd/internal/efstest"
	"github.com/efsd/efsd/internal/efstest/deploy"
)

// TestLostCreateAnswer: a CreateReplicationConfiguration at A reaches B,
// which makes the destination, but B's answer never reaches A (the proxy
// between them drops everything B sends while the request goes out on an
// open connection, and the connection is then cut). A records nothing and
// the call fails; B is left with a configuration A never recorded.
//
//   - Not retried: B's side disappears by itself (B asks A, which says it
//     never recorded it): the file system B made for the call is deleted,
//     an existing one B claimed is DISABLED again with its data, and A has
//     no configuration. The same when A crashes while the call waits.
//   - Retried by the SDK (a 504 is retryable): the retry succeeds, with the
//     destination B made (or claimed) for the first attempt, and B has
//     exactly one configuration and one destination for each source, which
//     replicates.
func TestLostCreateAnswer(t *testing.T) {
	t.Parallel()
	p := newPair(t, true)
	// A configuration replicating keeps a connection from A to B open
	// (idle passes every rescan interval): the requests below go out on
	// it, so they reach B while B's answers are dropped.
	warm := *createFS(t, p.ca, "lost-warm").FileSystemId
	warmDst := replicate(t, p.ca, warm, types.DestinationToCreate{Region: aws.String(regionB)})
	linkUp := func(t *testing.T) {
		t.Helper()
		since := time.Now()
		poll(t, 60*time.Second, 100*time.Millisecond, "a pass of the warm configuration after "+since.Format(time.RFC3339Nano), func() (bool, string) {
			d, state := destination(t, p.ca, warm)
			return d != nil && d.LastReplicatedTimestamp != nil && d.LastReplicatedTimestamp.After(since), state
		})
	}
	// lose starts creates at A with c, waits until B has made each one's
	// destination, then cuts the link: B's answers never arrive. It
	// returns B's destinations by source, and the calls' results.
	lose := func(t *testing.T, c *efs.Client, dsts map[string]types.DestinationToCreate, cut func()) (map[string]string, <-chan created) {
		t.Helper()
		linkUp(t)
		drop := p.px.Drop(deploy.Downstream)
		defer drop.Remove()
		results := make(chan created, len(dsts))
		for src, dst := range dsts {
			go func() {
				out, err := c.CreateReplicationConfiguration(ctx(t), &efs.CreateReplicationConfigurationInput{
					SourceFileSystemId: aws.String(src), Destinations: []types.DestinationToCreate{dst}})
				results <- created{src, out, err}
			}()
		}
		atB := map[string]string{}
		for src := range dsts {
			poll(t, 15*time.Second, 20*time.Millisecond, "B's side of "+src, func() (bool, string) {
				d, state := destination(t, p.cb, src)
				if d != nil {
					atB[src] = aws.ToString(d.FileSystemId)
				}
				return d != nil, state
			})
		}
		for src := range dsts {
			if _, err := replication(t, p.ca, src); err == nil {
				t.Fatalf("A recorded the configuration of %s without B's answer", src)
			}
		}
		if cut != nil {
			cut()
		}
		drop.Remove() // closes the connection that carried the requests
		return atB, results
	}
	// onlyAtB: B's configurations are the warm one and those of srcs; its
	// file systems are those of ids.
	onlyAtB := func(t *testing.T, srcs []string, ids []string) (bool, string) {
		reps, err := p.cb.DescribeReplicationConfigurations(ctx(t), &efs.DescribeReplicationConfigurationsInput{})
		if err != nil {
			return false, err.Error()
		}
		var gotSrcs []string
		for _, r := range reps.Replications {
			gotSrcs = append(gotSrcs, aws.ToString(r.SourceFileSystemId))
		}
		fss, err := p.cb.DescribeFileSystems(ctx(t), &efs.DescribeFileSystemsInput{})
		if err != nil {
			return false, err.Error()
		}
		var gotIDs []string
		for _, fs := range fss.FileSystems {
			gotIDs = append(gotIDs, aws.ToString(fs.FileSystemId)+" "+string(fs.LifeCycleState))
		}
		wantSrcs := append([]string{warm}, srcs...)
		var wantIDs []string
		for _, id := range append([]string{warmDst}, ids...) {
			wantIDs = append(wantIDs, id+" available")
		}
		slices.Sort(gotSrcs)
		slices.Sort(wantSrcs)
		slices.Sort(gotIDs)
		slices.Sort(wantIDs)
		state := "configurations of " + strings.Join(gotSrcs, ", ") + "; file systems " + strings.Join(gotIDs, ", ")
		return slices.Equal(gotSrcs, wantSrcs) && slices.Equal(gotIDs, wantIDs), state
	}

	// B's existing file system, claimed by one of the creates.
	existing := *createFS(t, p.cb, "lost-existing-dst").FileSystemId
	existingDir := p.b.VolumePath(efstest.AccountA.Account, regionB, existing)
	must(t, os.WriteFile(filepath.Join(existingDir, "before"), []byte("B's data from before\n"), 0o644))
	setProtection(t, p.cb, existing, types.ReplicationOverwriteProtectionDisabled)
	noRetry := p.a.Client(efstest.AccountA, regionA) // SDK retries off

	t.Run("not retried", func(t *testing.T) {
		srcNew := *createFS(t, p.ca, "lost-new").FileSystemId
		srcClaim := *createFS(t, p.ca, "lost-claim").FileSystemId
		atB, results := lose(t, noRetry, map[string]types.DestinationToCreate{
			srcNew:   {Region: aws.String(regionB)},
			srcClaim: {Region: aws.String(regionB), FileSystemId: aws.String(existing)},
		}, nil)
		if atB[srcClaim] != existing {
			t.Fatalf("B's side of %s has destination %s, want %s", srcClaim, atB[srcClaim], existing)
		}
		for range 2 {
			r := <-results
			msg := wantCode(t, r.err, "DependencyTimeout")
			if !strings.Contains(msg, "destination deployment 'b' unreachable") || !strings.Contains(msg, "no replication configuration was created") {
				t.Errorf("create of %s without B's answer: %q", r.src, msg)
			}
			_, err := replication(t, p.ca, r.src)
			wantCode(t, err, "ReplicationNotFound")
		}
		start := time.Now()
		poll(t, 60*time.Second, 100*time.Millisecond, "B's sides gone, the file system made for the call deleted", func() (bool, string) {
			return onlyAtB(t, nil, []string{existing})
		})
		t.Logf("B removed both sides %v after the cut", time.Since(start).Round(time.Millisecond))
		if got := protection(t, p.cb, existing); got != types.ReplicationOverwriteProtectionDisabled {
			t.Errorf("claimed file system's protection %s after its configuration was removed, want DISABLED as before", got)
		}
		if b, err := os.ReadFile(filepath.Join(existingDir, "before")); err != nil || string(b) != "B's data from before\n" {
			t.Errorf("claimed file system's data: %q %v", b, err)
		}
		if _, err := describeFS(t, p.cb, atB[srcNew]); err == nil {
			t.Errorf("file system %s made for the failed call still exists", atB[srcNew])
		}
	})

	t.Run("A crashes while waiting", func(t *testing.T) {
		src := *createFS(t, p.ca, "lost-crash").FileSystemId
		atB, results := lose(t, noRetry, map[string]types.DestinationToCreate{src: {Region: aws.String(regionB)}}, p.a.Kill)
		if r := <-results; r.err == nil {
			t.Fatal("create succeeded with A killed")
		}
		p.a.Restart()
		_, err := replication(t, p.ca, src)
		wantCode(t, err, "ReplicationNotFound")
		poll(t, 60*time.Second, 100*time.Millisecond, "B's side gone, "+atB[src]+" deleted", func() (bool, string) {
			return onlyAtB(t, nil, []string{existing})
		})
	})

	t.Run("retried by the SDK", func(t *testing.T) {
		// A new destination, and B's existing file system (DISABLED again
		// after the first part) claimed.
		srcNew := *createFS(t, p.ca, "lost-retried-new").FileSystemId
		srcClaim := *createFS(t, p.ca, "lost-retried-claim").FileSystemId
		for i, src := range []string{srcNew, srcClaim} {
			writeTree(t, p.a.VolumePath(efstest.AccountA.Account, regionA, src), uint64(40+i), 6)
		}
		// The SDK's standard retryer (test clients turn it off), without
		// its backoff's wait.
		sdk := p.a.Client(efstest.AccountA, regionA, func(o *efs.Options) {
			o.RetryMaxAttempts = retry.DefaultMaxAttempts
			o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
				so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 100 * time.Millisecond, nil })
			})
		})
		atB, results := lose(t, sdk, map[string]types.DestinationToCreate{
			srcNew:   {Region: aws.String(regionB)},
			srcClaim: {Region: aws.String(regionB), FileSystemId: aws.String(existing)},
		}, nil)
		dsts := map[string]string{}
		for range 2 {
			r := <-results
			if r.err != nil {
				t.Fatalf("create of %s retried by the SDK after the lost answer: %v", r.src, r.err)
			}
			if attempts, _ := retry.GetAttemptResults(r.out.ResultMetadata); len(attempts.Results) < 2 {
				t.Fatalf("the create of %s took %d attempt(s); the first one's answer was lost, so want a retry", r.src, len(attempts.Results))
			}
			dsts[r.src] = aws.ToString(r.out.Destinations[0].FileSystemId)
			if dsts[r.src] != atB[r.src] {
				t.Errorf("the retry's destination is %s, want %s, the first attempt's", dsts[r.src], atB[r.src])
			}
		}
		if dsts[srcClaim] != existing {
			t.Fatalf("the claim's destination is %s, want %s", dsts[srcClaim], existing)
		}
		srcs, ids := []string{srcNew, srcClaim}, []string{existing, dsts[srcNew]}
		if ok, state := onlyAtB(t, srcs, ids); !ok {
			t.Fatalf("B after the retries: %s; want one configuration and one destination of each source", state)
		}
		for _, src := range srcs {
			srcDir, dstDir := p.volumes(src, dsts[src])
			converge(t, p.cb, dsts[src], srcDir, dstDir, time.Now(), 60*time.Second)
			waitStatus(t, p.ca, src, types.ReplicationStatusEnabled, 10*time.Second)
		}
		// Nothing removes them later: they were recorded.
		for end := time.Now().Add(3 * 2 * rescan); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
			if ok, state := onlyAtB(t, srcs, ids); !ok {
				t.Fatalf("B after the retries replicated: %s", state)
			}
		}
		for _, id := range ids {
			if got := protection(t, p.cb, id); got != types.ReplicationOverwriteProtectionReplicating {
				t.Errorf("destination %s protection %s, want REPLICATING", id, got)
			}
		}
	})
}

// created is the outcome of one CreateReplicationConfiguration.
type created struct {
	src string
	out *efs.CreateReplicationConfigurationOutput
	err error
}
