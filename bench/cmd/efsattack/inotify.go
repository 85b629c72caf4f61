package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"
)

// inotifyUID is the user efsd runs as in the inotify attack. inotify
// instances are counted per user (fs.inotify.max_user_instances, 128 by
// default), so efsd gets a user of its own: the attack then exhausts
// nothing that other root processes on a shared machine need, and the
// probe can check what the limit is about, another process of the same
// user.
const inotifyUID = 64999

const probeInotifyArg = "__probe-inotify"

// probeInotify is run as a child: exit 0 if inotify_init1 works.
func probeInotify() int {
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC)
	if err != nil {
		fmt.Fprintln(os.Stderr, "inotify_init1:", err)
		return 1
	}
	syscall.Close(fd)
	return 0
}

// inotifyExhaustion: more replication configurations than there are
// inotify instances per user, in one efsd, destinations in another
// region. efsd must use few instances, still replicate a new write within
// the rescan interval, and leave instances for other processes.
func (h *harness) inotifyExhaustion() result {
	n := pick(h, 150, 40)
	rescan := 5 * time.Second
	maxInstances := 8
	limitB, _ := os.ReadFile("/proc/sys/fs/inotify/max_user_instances")
	r := result{held: true, scale: fmt.Sprintf("%d file systems replicating us-east-1 → us-west-2, efsd as uid %d (max_user_instances %s)",
		n, inotifyUID, bytes.TrimSpace(limitB))}
	o := efsdOpts{uid: inotifyUID, config: map[string]any{"replicationRescanInterval": rescan.String()}}
	in, err := h.startEfsd("inotify", o)
	if err != nil {
		r.fail("setup: %v", err)
		return r
	}
	defer in.stop()
	c := in.client(devAcct, region)
	type pair struct{ src, dst string }
	pairs := make([]pair, n)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	jobs := make(chan int)
	t0 := time.Now()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				src, err := in.createFS(c, fmt.Sprintf("inotify-%d", i))
				if err == nil {
					var out *efs.CreateReplicationConfigurationOutput
					out, err = c.CreateReplicationConfiguration(h.ctx, &efs.CreateReplicationConfigurationInput{
						SourceFileSystemId: aws.String(src),
						Destinations:       []types.DestinationToCreate{{Region: aws.String("us-west-2")}}})
					if err == nil {
						pairs[i] = pair{src, *out.Destinations[0].FileSystemId}
					}
				}
				if err != nil {
					mu.Lock()
					first = cmpErr(first, err)
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n && h.check() == nil; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if first != nil {
		r.fail("setup: %v", first)
		return r
	}
	logf("  %d file systems and replication configurations created in %s", n, time.Since(t0).Round(time.Second))
	enabled := 0
	err = h.poll(3*time.Minute, time.Second, fmt.Sprintf("%d replications ENABLED", n), func() (bool, error) {
		enabled = 0
		p := efs.NewDescribeReplicationConfigurationsPaginator(c, &efs.DescribeReplicationConfigurationsInput{MaxResults: aws.Int32(100)})
		for p.HasMorePages() {
			out, err := p.NextPage(h.ctx)
			if err != nil {
				return false, err
			}
			for _, rep := range out.Replications {
				if len(rep.Destinations) == 1 && rep.Destinations[0].Status == types.ReplicationStatusEnabled {
					enabled++
				}
			}
		}
		return enabled == n, nil
	})
	if err != nil {
		r.fail("%d of %d replications ENABLED: %v", enabled, n, err)
	}
	// Let the workers settle (each takes its watch at its first pass).
	time.Sleep(2 * rescan)
	inst := countInotify(in.proc.PID)
	r.fig("efsd holds %d inotify instances (limit for held: %d)", inst, maxInstances)
	if inst > maxInstances {
		r.fail("efsd holds %d inotify instances for %d replications", inst, n)
	}
	// Another process of efsd's user, and the attacker (root).
	probe := exec.Command(filepath.Join(h.work, "bin", "efsattack"), probeInotifyArg)
	probe.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: inotifyUID, Gid: inotifyUID}}
	if out, err := probe.CombinedOutput(); err != nil {
		r.fail("another process of efsd's user cannot inotify_init: %v %s", err, bytes.TrimSpace(out))
	} else {
		r.fig("inotify_init by another process of efsd's user: ok")
	}
	if probeInotify() != 0 {
		r.fail("the attacker (root) cannot inotify_init")
	}
	// A new write to the last source reaches its destination.
	last := pairs[n-1]
	name := fmt.Sprintf("written-after-%d.txt", n)
	content := []byte(fmt.Sprintf("written at %s\n", time.Now().Format(time.RFC3339Nano)))
	tmp := filepath.Join(in.dataDir, name)
	if err := os.WriteFile(tmp, content, 0o644); err != nil {
		r.fail("write: %v", err)
		return r
	}
	os.Lchown(tmp, inotifyUID, inotifyUID)
	wrote := time.Now()
	if err := os.Rename(tmp, filepath.Join(in.volume(devAccount, region, last.src), name)); err != nil {
		r.fail("write: %v", err)
		return r
	}
	dst := filepath.Join(in.volume(devAccount, "us-west-2", last.dst), name)
	ctx, cancel := context.WithTimeout(h.ctx, 30*time.Second)
	defer cancel()
	var took time.Duration
	for ctx.Err() == nil {
		if b, err := os.ReadFile(dst); err == nil && bytes.Equal(b, content) {
			took = time.Since(wrote)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	switch {
	case took == 0:
		r.fail("a new write did not reach the destination within 30s")
	case took > rescan+2*time.Second:
		r.fail("a new write reached the destination after %s (rescan interval %v)", ms(took), rescan)
	}
	if took > 0 {
		r.fig("new write replicated in %s (rescan interval %v)", ms(took), rescan)
	}
	r.fig("peak RSS %s", mb(in.peak()))
	if ok, why := in.alive(); !ok {
		r.fail("%s", why)
	}
	return r
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// countInotify counts a process's inotify instances.
func countInotify(pid int) int {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	es, _ := os.ReadDir(dir)
	n := 0
	for _, e := range es {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && l == "anon_inode:inotify" {
			n++
		}
	}
	return n
}
