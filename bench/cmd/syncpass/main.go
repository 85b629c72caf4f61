// Command syncpass runs efsd's copy engine, treesync.Sync, on two trees
// without a server, and prints one JSON line per pass: the pass itself,
// with nothing around it. efsbench uses it for the no-op pass; it is built
// from the same source as the efsd binary under test.
//
// With -record, passes use (and keep) that treesync.Record, as efsd's
// replication does; without, every file whose size matches is compared.
// -warmup passes run first and are not printed (a new record is filled by
// a pass comparing contents). -verify makes the measured passes scrubs.
//
//	syncpass -src SRC -dst DST [-n 3] [-workers 0] [-record FILE [-warmup 1]] [-verify] [-cpuprofile FILE] [-memprofile FILE]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/efsd/efsd/internal/treesync"
)

func cpu() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

func main() {
	src := flag.String("src", "", "source tree")
	dst := flag.String("dst", "", "destination tree")
	n := flag.Int("n", 1, "passes")
	workers := flag.Int("workers", 0, "treesync.Options.Workers (0: its default)")
	prof := flag.String("cpuprofile", "", "write a CPU profile of the passes to this file")
	recPath := flag.String("record", "", "treesync record file (created if missing)")
	warmup := flag.Int("warmup", 0, "passes to run before the measured ones")
	verify := flag.Bool("verify", false, "measured passes compare every file by content (a scrub)")
	memProf := flag.String("memprofile", "", "after the passes, write a heap profile (live objects, after a collection) to this file")
	flag.Parse()
	if *src == "" || *dst == "" || *n < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			fmt.Fprintln(os.Stderr, "syncpass:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	o := treesync.Options{Workers: *workers}
	if *recPath != "" {
		rec, err := treesync.OpenRecord(*recPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, "syncpass:", err)
			os.Exit(1)
		}
		defer rec.Close()
		o.Record = rec
	}
	for range *warmup {
		if _, err := treesync.Sync(context.Background(), *src, *dst, o); err != nil {
			fmt.Fprintln(os.Stderr, "syncpass:", err)
			os.Exit(1)
		}
	}
	enc := json.NewEncoder(os.Stdout)
	o.Verify = *verify
	for range *n {
		c0, t0 := cpu(), time.Now()
		st, err := treesync.Sync(context.Background(), *src, *dst, o)
		wall, c := time.Since(t0).Seconds(), cpu()-c0
		if err != nil {
			fmt.Fprintln(os.Stderr, "syncpass:", err)
			pprof.StopCPUProfile()
			os.Exit(1)
		}
		enc.Encode(map[string]any{"wall_s": wall, "cpu_s": c, "copied": st.FilesCopied, "bytes": st.BytesCopied,
			"deleted": st.Deleted, "unchanged": st.Unchanged, "compared": st.FilesCompared, "bytes_compared": st.BytesCompared, "differences": st.Differences})
	}
	if *memProf != "" {
		// What stays between passes (the record) is what a long-running
		// worker keeps: profile the live heap.
		runtime.GC()
		f, err := os.Create(*memProf)
		if err == nil {
			err = errors.Join(pprof.Lookup("heap").WriteTo(f, 0), f.Close())
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "syncpass:", err)
			os.Exit(1)
		}
		runtime.KeepAlive(o.Record)
	}
}
