package chunks

import (
	"bufio"
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// slowSupplier paces a pipeSupplier so that a kill lands mid-assembly.
type slowSupplier struct{ p *pipeSupplier }

func (s slowSupplier) Fetch(ctx context.Context, want []Chunk, deliver func(Hash, []byte) error) error {
	return s.p.Fetch(ctx, want, func(h Hash, b []byte) error {
		time.Sleep(60 * time.Millisecond)
		return deliver(h, b)
	})
}

// TestKillChild is the process TestKillDuringAssembly kills: it assembles
// CHUNKS_CHILD_DST/f from CHUNKS_CHILD_SRC/f.
func TestKillChild(t *testing.T) {
	src, dst := os.Getenv("CHUNKS_CHILD_SRC"), os.Getenv("CHUNKS_CHILD_DST")
	if src == "" {
		t.Skip("run by TestKillDuringAssembly")
	}
	s := newSource(src)
	ix := openIndex(t, dst)
	l := s.list(t, "f")
	os.Stdout.WriteString("started\n")
	if _, err := ix.Assemble(context.Background(), "f", l, slowSupplier{&pipeSupplier{src: s}}, nil); err != nil {
		t.Fatal(err)
	}
}

// kill -9 of the destination at random moments of an assembly: its real
// name holds the old content or the new, never a mix; the last attempt
// completes from what the killed ones left.
func TestKillDuringAssembly(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	src, dst := t.TempDir(), t.TempDir()
	prev := randBytes(80, 12<<20)
	writeFile(t, filepath.Join(dst, "f"), prev)
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	var data []byte
	killed := 0
	for i := range 8 {
		// Every other round a new version, sharing its first half with
		// the first one; in between, a retry of the same.
		if i%2 == 0 {
			data = randBytes(uint64(81+i), 12<<20)
			copy(data, prev[:6<<20])
			writeFile(t, filepath.Join(src, "f"), data)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "CHUNKS_CHILD_SRC="+src, "CHUNKS_CHILD_DST="+dst)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(out).ReadString('\n')
		if line != "started\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child: %q", line)
		}
		// An assembly of a new version takes at least 6 fetched chunks ×
		// 60 ms: a kill within 20–150 ms always lands in it.
		kill := time.Duration(20+r.IntN(130)) * time.Millisecond
		timer := time.AfterFunc(kill, func() { cmd.Process.Kill() })
		err = cmd.Wait()
		timer.Stop()
		got, rerr := os.ReadFile(filepath.Join(dst, "f"))
		if rerr != nil {
			t.Fatal(rerr)
		}
		complete := bytes.Equal(got, data)
		if !complete && !bytes.Equal(got, prev) {
			t.Fatalf("round %d (kill after %v): a torn file under the real name", i, kill)
		}
		if err != nil {
			killed++
		}
		prev = got
		t.Logf("round %d: killed after %v: %v, complete %v", i, kill, err, complete)
	}
	if killed == 0 {
		t.Fatal("no round was killed")
	}
	s := newSource(src)
	ix := openIndex(t, dst)
	st, err := ix.Assemble(context.Background(), "f", s.list(t, "f"), &pipeSupplier{src: s}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("final attempt: %+v", st)
	mustEqualFile(t, filepath.Join(dst, "f"), data)
	noTemporaries(t, dst)
}
