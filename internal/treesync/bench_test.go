package treesync

import (
	"context"
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// makeSmallFiles builds tree (a) of the benchmark plan: 10,000 files of
// 4 KiB in 100 directories.
func makeSmallFiles(b *testing.B, root string) {
	buf := make([]byte, 4096)
	for d := range 100 {
		dir := fmt.Sprintf("%s/d%03d", root, d)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range 100 {
			buf[0], buf[1] = byte(d), byte(f)
			if err := os.WriteFile(fmt.Sprintf("%s/f%03d", dir, f), buf, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkSync measures tree (a): a durable initial copy into an empty
// destination, and a pass with nothing to do. Run in a directory on the
// file system of interest (b.TempDir honours TMPDIR).
func BenchmarkSync(b *testing.B) {
	base := b.TempDir()
	src := base + "/src"
	makeSmallFiles(b, src)
	unix.Sync()
	// Each iteration copies into a new directory: deleting the previous
	// copy would make the next one slower on ext4 without a journal, which
	// avoids reusing recently freed inodes by scanning for others.
	n := 0
	b.Run("initial", func(b *testing.B) {
		for range b.N {
			n++
			if _, err := Sync(context.Background(), src, fmt.Sprintf("%s/dst%d", base, n), Options{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("noop", func(b *testing.B) {
		dst := base + "/dst-noop"
		rec, err := OpenRecord(base + "/record")
		if err != nil {
			b.Fatal(err)
		}
		defer rec.Close()
		// The second pass vouches for the files the first copied (their
		// ctimes were then in the racy window).
		for range 2 {
			if _, err := Sync(context.Background(), src, dst, Options{Record: rec}); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		for range b.N {
			if st, err := Sync(context.Background(), src, dst, Options{Record: rec}); err != nil || st.FilesCopied != 0 {
				b.Fatal(err, st)
			}
		}
	})
	// The baseline for noop: list every directory and lstat every entry of
	// the source, once.
	b.Run("statwalk", func(b *testing.B) {
		for range b.N {
			fd, err := unix.Open(src, unix.O_RDONLY|unix.O_DIRECTORY, 0)
			if err != nil {
				b.Fatal(err)
			}
			statWalk(b, fd)
			unix.Close(fd)
		}
	})
}

func statWalk(b *testing.B, fd int) {
	names, err := readNames(fd)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range names {
		m, err := lstatAt(fd, n)
		if err != nil {
			b.Fatal(err)
		}
		if m.isDir() {
			c, err := unix.Openat(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
			if err != nil {
				b.Fatal(err)
			}
			statWalk(b, c)
			unix.Close(c)
		}
	}
}

// BenchmarkSyncDirs times Sync from $TREESYNC_SRC to $TREESYNC_DST (each
// iteration into a fresh $TREESYNC_DST<i> unless $TREESYNC_NOOP is set;
// $TREESYNC_WORKERS sets Options.Workers, $TREESYNC_RECORD the file of
// Options.Record), to compare with rsync or cp on
// trees of your own:
//
//	TREESYNC_SRC=/data/a TREESYNC_DST=/data/out go test -run - -bench SyncDirs -benchtime 1x ./internal/treesync
func BenchmarkSyncDirs(b *testing.B) {
	src, dst := os.Getenv("TREESYNC_SRC"), os.Getenv("TREESYNC_DST")
	if src == "" || dst == "" {
		b.Skip("TREESYNC_SRC and TREESYNC_DST not set")
	}
	var o Options
	fmt.Sscan(os.Getenv("TREESYNC_WORKERS"), &o.Workers)
	if p := os.Getenv("TREESYNC_RECORD"); p != "" {
		rec, err := OpenRecord(p)
		if err != nil {
			b.Fatal(err)
		}
		defer rec.Close()
		o.Record = rec
	}
	var total Stats
	for i := range b.N {
		d := dst
		if os.Getenv("TREESYNC_NOOP") == "" {
			d = fmt.Sprint(dst, i)
		}
		st, err := Sync(context.Background(), src, d, o)
		if err != nil {
			b.Fatal(err)
		}
		total.FilesCopied += st.FilesCopied
		total.BytesCopied += st.BytesCopied
	}
	b.ReportMetric(float64(total.FilesCopied)/float64(b.N), "files/op")
	b.SetBytes(total.BytesCopied / int64(b.N))
}

// BenchmarkStatWalkDirs is the stat-walk baseline for $TREESYNC_SRC.
func BenchmarkStatWalkDirs(b *testing.B) {
	src := os.Getenv("TREESYNC_SRC")
	if src == "" {
		b.Skip("TREESYNC_SRC not set")
	}
	for range b.N {
		fd, err := unix.Open(src, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			b.Fatal(err)
		}
		statWalk(b, fd)
		unix.Close(fd)
	}
}
