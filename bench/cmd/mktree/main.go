// Command mktree writes one of the benchmark's trees, byte for byte as
// efsbench does, so that a miss can be profiled by hand on the same data:
//
//	mktree -tree a|b|c|scale -files N -dir DIR
//	mktree -tree a -dir DIR -mutate ROUND   # rewrite 1% of an existing tree
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/efsd/efsd/bench/internal/trees"
)

func main() {
	tree := flag.String("tree", "a", "a (10,000 × 4 KiB), b (20 × 64 MiB), c (mixed, 800 MiB) or scale")
	files := flag.Int("files", 0, "files of a scale tree (required with -tree scale)")
	dir := flag.String("dir", "", "directory to write (created)")
	mutate := flag.Int("mutate", -1, "instead of building, rewrite 1% of the files as mutation round N does")
	flag.Parse()
	var s *trees.Spec
	switch *tree {
	case "a":
		s = trees.SmallFiles("a", 10000, 4096, 100)
	case "b":
		s = trees.LargeFiles("b", 20, 64<<20)
	case "c":
		s = trees.Mixed("c", 5000, 800<<20)
	case "scale":
		if *files <= 0 {
			fmt.Fprintln(os.Stderr, "mktree: -files is required with -tree scale")
			os.Exit(2)
		}
		s = trees.Scale("scale", *files)
	default:
		fmt.Fprintln(os.Stderr, "mktree: unknown tree", *tree)
		os.Exit(2)
	}
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "mktree: -dir is required")
		os.Exit(2)
	}
	if *mutate >= 0 {
		changed, err := trees.Mutate(*dir, s, *mutate, 0.01, 16)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mktree:", err)
			os.Exit(1)
		}
		fmt.Printf("rewrote %d files\n", len(changed))
		return
	}
	if err := trees.Build(*dir, s, 16); err != nil {
		fmt.Fprintln(os.Stderr, "mktree:", err)
		os.Exit(1)
	}
	fmt.Println(s.Desc)
}
