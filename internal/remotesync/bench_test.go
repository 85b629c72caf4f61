package remotesync

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// BenchmarkInitialSmallFiles times the first pass of files of 4 KiB, 100
// to a directory (the bench's tree (a) shape: 10 directories, and all 100
// of the full tree), receiver in process.
func BenchmarkInitialSmallFiles(b *testing.B) {
	for _, dirs := range []int{10, 100} {
		b.Run(fmt.Sprintf("files=%d", dirs*100), func(b *testing.B) { benchInitialSmallFiles(b, dirs) })
	}
}

func benchInitialSmallFiles(b *testing.B, dirs int) {
	var cpu time.Duration
	for range b.N {
		b.StopTimer()
		src, dst := b.TempDir(), b.TempDir()
		for d := range dirs {
			dir := filepath.Join(src, fmt.Sprintf("d%02d", d))
			if err := os.Mkdir(dir, 0o755); err != nil {
				b.Fatal(err)
			}
			for f := range 100 {
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", f)), randBytes(uint64(d*1000+f), 4096), 0o644); err != nil {
					b.Fatal(err)
				}
			}
		}
		s, r := benchEnds(b, src, dst)
		cpu0 := cpuTime()
		b.StartTimer()
		start := time.Now()
		if _, err := s.Pass(b.Context(), pipeTransport{r}, PassOptions{Start: start}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		cpu += cpuTime() - cpu0
		s.Close()
		r.Close()
		b.StartTimer()
	}
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkChangedBigFiles times a pass after one of 16 files of 4 MiB was
// rewritten with new bytes (the bench's tree (b), 1% changed), receiver
// in process.
func BenchmarkChangedBigFiles(b *testing.B) {
	src, dst := b.TempDir(), b.TempDir()
	for f := range 16 {
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%02d", f)), randBytes(uint64(f), 4<<20), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	r, err := NewReceiver(dst, filepath.Join(b.TempDir(), "recv"), ReceiverOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	s, err := NewSender(src, filepath.Join(b.TempDir(), "sent"), SenderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Pass(b.Context(), pipeTransport{r}, PassOptions{Start: time.Now()}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		if err := os.WriteFile(filepath.Join(src, "f03"), randBytes(uint64(100+i), 4<<20), 0o644); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := s.Pass(b.Context(), pipeTransport{r}, PassOptions{Start: time.Now()}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInitialBigFile times the first pass of one 256 MiB file of
// incompressible bytes (the bench's "big" tree, scaled down), receiver in
// process.
func BenchmarkInitialBigFile(b *testing.B) {
	src := b.TempDir()
	if err := os.WriteFile(filepath.Join(src, "big"), randBytes(9, 256<<20), 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(256 << 20)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dst := b.TempDir()
		s, r := benchEnds(b, src, dst)
		b.StartTimer()
		if _, err := s.Pass(b.Context(), pipeTransport{r}, PassOptions{Start: time.Now()}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Close()
		r.Close()
		os.RemoveAll(dst)
		b.StartTimer()
	}
}

// benchEnds opens a sender of src and a receiver into dst, with fresh
// state.
func benchEnds(b *testing.B, src, dst string) (*Sender, *Receiver) {
	b.Helper()
	r, err := NewReceiver(dst, filepath.Join(b.TempDir(), "recv"), ReceiverOptions{})
	if err != nil {
		b.Fatal(err)
	}
	s, err := NewSender(src, filepath.Join(b.TempDir(), "sent"), SenderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return s, r
}
