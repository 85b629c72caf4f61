package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/efsd/efsd/internal/admin"
)

const scrubUsage = `Usage: efsd scrub [--data-dir DIR] [--config FILE] [ID]

Asks the efsd running on the data directory to verify replication
destinations now: every file is read on both sides and compared, what
differs is repaired and logged by efsd. ID names one configuration (its
source or destination file system ID); without it every running
configuration is scrubbed, one after the other. Progress is shown while it
runs (on one line on a terminal), then a summary. Interrupting the command
does not stop a scrub that has started.
`

// runScrub is `efsd scrub`.
func (m *Main) runScrub(ctx context.Context, args []string) error {
	fset := flag.NewFlagSet("efsd scrub", flag.ContinueOnError)
	fset.SetOutput(m.Stderr)
	dataDir := fset.String("data-dir", "", "data directory (EFSD_DATA_DIR)")
	configPath := fset.String("config", "", "config file (EFSD_CONFIG)")
	fset.Usage = func() { fmt.Fprint(m.Stderr, scrubUsage) }
	if err := fset.Parse(args); err != nil {
		return err
	}
	if fset.NArg() > 1 {
		fset.Usage()
		return fmt.Errorf("unexpected argument %q", fset.Arg(1))
	}
	_, cfg, err := m.loadConfig(*configPath, *dataDir)
	if err != nil {
		return err
	}
	tty := isTerminal(m.Stdout)
	every := 2 * time.Second
	if tty {
		every = 250 * time.Millisecond
	}
	var total admin.Message
	var failed []string
	n := 0
	err = admin.Scrub(ctx, cfg.DataDir, fset.Arg(0), every, func(msg admin.Message) {
		line := scrubLine(msg)
		if msg.Type == "progress" {
			if tty {
				fmt.Fprintf(m.Stdout, "\r\033[K%s", line)
			} else {
				fmt.Fprintln(m.Stdout, line)
			}
			return
		}
		if tty {
			fmt.Fprint(m.Stdout, "\r\033[K")
		}
		fmt.Fprintln(m.Stdout, line)
		n++
		total.FilesCompared += msg.FilesCompared
		total.BytesRead += msg.BytesRead
		total.Differences += msg.Differences
		total.Seconds += msg.Seconds
		if msg.Error != "" {
			failed = append(failed, msg.Replication)
		}
	})
	if err != nil {
		return fmt.Errorf("scrub: %w", err)
	}
	if n == 0 {
		fmt.Fprintln(m.Stdout, "no running replication configuration to scrub")
		return nil
	}
	fmt.Fprintf(m.Stdout, "scrub done: %d configuration(s), %d files compared, %s read in %s (%s), %d difference(s) repaired\n",
		n, total.FilesCompared, bytesText(total.BytesRead), secondsText(total.Seconds), rateText(total.BytesRead, total.Seconds), total.Differences)
	if len(failed) > 0 {
		return errors.New("scrub failed for " + fmt.Sprint(failed))
	}
	return nil
}

// scrubLine renders a progress or result message.
func scrubLine(m admin.Message) string {
	verb := "scrubbing"
	if m.Type == "result" {
		verb = "scrubbed"
	}
	s := fmt.Sprintf("%s %s (%s → %s): %d files compared, %s read in %s (%s), %d difference(s) repaired",
		verb, m.Replication, m.Source, m.Destination, m.FilesCompared, bytesText(m.BytesRead), secondsText(m.Seconds),
		rateText(m.BytesRead, m.Seconds), m.Differences)
	if m.FilesCopied > m.Differences || m.Deleted > 0 {
		s += fmt.Sprintf("; %d other file(s) copied, %d entries deleted", m.FilesCopied-m.Differences, m.Deleted)
	}
	if m.Error != "" {
		s += ": FAILED: " + m.Error
	}
	return s
}

func bytesText(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

func secondsText(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Millisecond).String()
}

func rateText(n int64, s float64) string {
	if s <= 0 {
		return "– MB/s"
	}
	return fmt.Sprintf("%.1f MB/s", float64(n)/1e6/s)
}

// isTerminal reports whether w is a terminal (progress then rewrites one
// line).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
