package crossdeploy_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/efsd/efsd/internal/efstest"
	"github.com/efsd/efsd/internal/efstest/deploy"
)

// versionData is the content of version v of the file name: a header
// naming both, then bytes drawn from them, of a size drawn from them.
func versionData(name string, v int) []byte {
	h := fnv.New64a()
	h.Write([]byte(name))
	rng := rand.New(rand.NewPCG(h.Sum64(), uint64(v)))
	size := 64<<10 + rng.IntN(1536<<10)
	b := make([]byte, size+8)
	for i := 0; i < size; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], rng.Uint64())
	}
	copy(b, fmt.Sprintf("efsd-xtest %s v%d\n", name, v))
	return b[:size]
}

// versions checks files against the versions written; it keeps the
// SHA-256 of each version it has met, as an observer sees the same
// versions many times.
type versions struct {
	mu   sync.Mutex
	sums map[string][32]byte
}

func (vs *versions) is(name string, v int, b []byte) bool {
	key := fmt.Sprintf("%s %d", name, v)
	vs.mu.Lock()
	want, ok := vs.sums[key]
	vs.mu.Unlock()
	if !ok {
		want = sha256.Sum256(versionData(name, v))
		vs.mu.Lock()
		if vs.sums == nil {
			vs.sums = map[string][32]byte{}
		}
		vs.sums[key] = want
		vs.mu.Unlock()
	}
	return sha256.Sum256(b) == want
}

var (
	versionHeader = regexp.MustCompile(`^efsd-xtest (f\d+\.dat) v(\d+)\n`)
	realName      = regexp.MustCompile(`^f\d+\.dat$`)
)

// check requires every file under a real name (fN.dat) in dir/v
// to be exactly one version written at the source: no torn, mixed or
// half-written file under its real name. Other names (the engine's
// temporary files) are not looked at.
func (vs *versions) check(dir string) error {
	entries, err := os.ReadDir(filepath.Join(dir, "v"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !realName.MatchString(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, "v", e.Name()))
		if os.IsNotExist(err) {
			continue // replaced or removed between listing and reading
		}
		if err != nil {
			return err
		}
		m := versionHeader.FindSubmatch(b)
		if m == nil || string(m[1]) != e.Name() {
			return fmt.Errorf("%s at B: %d bytes without its version header (starts %q)", e.Name(), len(b), b[:min(len(b), 40)])
		}
		var v int
		fmt.Sscan(string(m[2]), &v)
		if !vs.is(e.Name(), v, b) {
			return fmt.Errorf("%s at B: torn: header of version %d but %d bytes that are not it (want %d)", e.Name(), v, len(b), len(versionData(e.Name(), v)))
		}
	}
	return nil
}

// TestKill9EitherSideMidTransfer: while files are rewritten at A, A or B
// (drawn by a seeded schedule) is killed with SIGKILL at random moments
// and restarted, ten times. At every observation point each file under its
// real name at B is one whole version written at A; at the end the trees
// are identical.
func TestKill9EitherSideMidTransfer(t *testing.T) {
	t.Parallel()
	p := newPair(t, false)
	srcID := *createFS(t, p.ca, "kill-src").FileSystemId
	srcDir := p.a.VolumePath(efstest.AccountA.Account, regionA, srcID)
	must(t, os.Mkdir(filepath.Join(srcDir, "v"), 0o755))
	dstID := replicate(t, p.ca, srcID, types.DestinationToCreate{Region: aws.String(regionB)})
	_, dstDir := p.volumes(srcID, dstID)
	converge(t, p.cb, dstID, srcDir, dstDir, time.Now(), 60*time.Second)

	ks := deploy.NewKillSchedule(t, 100*time.Millisecond, 1500*time.Millisecond)
	var vs versions
	const files, rounds = 8, 10
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 10 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	writes, observations := 0, 0
	// The writer rewrites a file every 20 ms: each version lands whole
	// under its real name at A (written beside the volume, then renamed).
	wg.Add(2)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(ks.Seed, 1))
		versions := make([]int, files)
		tmp := filepath.Join(staging(p.a), "kill-staging")
		for i := 0; i < 100000; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			f := rng.IntN(files)
			versions[f]++
			name := fmt.Sprintf("f%d.dat", f)
			if err := os.WriteFile(tmp, versionData(name, versions[f]), 0o644); err != nil {
				fail("write %s: %v", name, err)
				return
			}
			if err := os.Rename(tmp, filepath.Join(srcDir, "v", name)); err != nil {
				fail("rename %s: %v", name, err)
				return
			}
			mu.Lock()
			writes++
			mu.Unlock()
		}
	}()
	observe := func(when string) {
		if err := vs.check(dstDir); err != nil {
			fail("%s: %v", when, err)
		}
		mu.Lock()
		observations++
		mu.Unlock()
	}
	go func() {
		defer wg.Done()
		for i := 0; i < 100000; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			observe("while running")
		}
	}()
	deps := []*deploy.Deployment{p.a, p.b}
	for round := range rounds {
		victim := deps[ks.Pick(len(deps))]
		wait, _ := ks.KillAfter(victim, nil)
		observe(fmt.Sprintf("round %d, %s just killed", round, victim.Name))
		victim.Restart()
		observe(fmt.Sprintf("round %d, %s restarted", round, victim.Name))
		t.Logf("round %d: killed %s after %v", round, victim.Name, wait)
		mu.Lock()
		failed := len(failures) > 0
		mu.Unlock()
		if failed {
			break
		}
	}
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("seed %d (EFSD_KILL_SEED=%d replays it):\n%s", ks.Seed, ks.Seed, joinLines(failures))
	}
	converge(t, p.cb, dstID, srcDir, dstDir, time.Now(), 120*time.Second)
	if err := vs.check(dstDir); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d kill -9s, %d versions written, %d observations of B: no torn file, trees identical", rounds, writes, observations)
}

func joinLines(s []string) string {
	var b bytes.Buffer
	for _, l := range s {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// TestCheckVersionsSeesTornFiles: the observer of the kill test finds a
// version cut short, a version with another's bytes, and a file without
// a header, and lets whole versions and temporary names be.
func TestCheckVersionsSeesTornFiles(t *testing.T) {
	var vs versions
	dir := t.TempDir()
	must(t, os.Mkdir(filepath.Join(dir, "v"), 0o755))
	put := func(name string, b []byte) {
		must(t, os.WriteFile(filepath.Join(dir, "v", name), b, 0o644))
	}
	put("f1.dat", versionData("f1.dat", 3))
	put(".f2.dat.tmp-123", []byte("half"))
	if err := vs.check(dir); err != nil {
		t.Fatalf("whole version refused: %v", err)
	}
	v2 := versionData("f2.dat", 2)
	for name, b := range map[string][]byte{
		"cut short":       v2[:len(v2)/2],
		"another version": append(append([]byte{}, v2[:100]...), versionData("f2.dat", 1)[100:]...),
		"no header":       bytes.Repeat([]byte{0}, 4096),
		"another file":    versionData("f1.dat", 2),
	} {
		put("f2.dat", b)
		if err := vs.check(dir); err == nil {
			t.Errorf("%s: not seen", name)
		}
	}
}
