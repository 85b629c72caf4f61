// Package fsmount creates the dedicated file system the data suites run
// on: a sparse image file formatted as ext4 with a journal and mounted
// through a loop device. It needs root; without it (or without loop
// devices) the caller falls back to a plain directory and says so.
package fsmount

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Mount is a mounted file system (or, when Fallback is set, a directory).
type Mount struct {
	Dir      string // where to work
	Image    string // backing image file; "" for a fallback
	Desc     string // for the results: what the file system is
	Fallback bool
	Options  string // mount options reported by /proc/mounts
}

// Create makes an image of sizeGiB (sparse) at image, formats it as ext4
// with a journal and inodes inodes (0: mkfs's default), and mounts it on
// dir. Inode tables and the journal are initialised eagerly, so that no
// background ext4lazyinit writes disturb the measurements.
func Create(image, dir string, sizeGiB, inodes int) (*Mount, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("not root: cannot mount a loop device")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := run("truncate", "-s", fmt.Sprintf("%dG", sizeGiB), image); err != nil {
		return nil, err
	}
	args := []string{"-q", "-F", "-t", "ext4", "-E", "lazy_itable_init=0,lazy_journal_init=0,nodiscard"}
	if inodes > 0 {
		args = append(args, "-N", fmt.Sprint(inodes))
	}
	if err := run("mkfs.ext4", append(args, image)...); err != nil {
		os.Remove(image)
		return nil, err
	}
	if err := run("mount", "-o", "loop", image, dir); err != nil {
		os.Remove(image)
		return nil, err
	}
	m := &Mount{Dir: dir, Image: image}
	m.Options = mountOptions(dir)
	m.Desc = fmt.Sprintf("ext4 with journal (%s) on a loop device backed by a sparse %d GiB image on the root file system; mounted %s",
		features(image), sizeGiB, m.Options)
	return m, nil
}

// Fallback uses dir on whatever file system holds it.
func Fallback(dir, why string) (*Mount, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &Mount{Dir: dir, Fallback: true,
		Desc: fmt.Sprintf("a directory on the root file system (%s), because a dedicated file system could not be created: %s", mountOptions(dir), why)}, nil
}

// Close unmounts (retrying while busy for up to 30 s) and deletes the
// image. A fallback directory is removed.
func (m *Mount) Close() error {
	if m.Fallback {
		return os.RemoveAll(m.Dir)
	}
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; {
		if err = run("umount", m.Dir); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("unmount %s (image %s left in place): %w", m.Dir, m.Image, err)
	}
	os.Remove(m.Dir)
	return os.Remove(m.Image)
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// mountOptions returns "TYPE (OPTIONS)" of the mount holding dir, from
// /proc/self/mounts (the longest matching mount point wins).
func mountOptions(dir string) string {
	abs, _ := filepath.Abs(dir)
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return "unknown"
	}
	best, desc := "", "unknown"
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		mp := f[1]
		if (abs == mp || strings.HasPrefix(abs, strings.TrimSuffix(mp, "/")+"/")) && len(mp) >= len(best) {
			best, desc = mp, fmt.Sprintf("%s %s (%s)", f[2], mp, f[3])
		}
	}
	return desc
}

// features lists the journal-related features of an ext4 image.
func features(image string) string {
	out, err := exec.Command("dumpe2fs", "-h", image).CombinedOutput()
	if err != nil {
		return "features unknown"
	}
	var feats, inodes string
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "Filesystem features:"); ok {
			feats = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "Inode count:"); ok {
			inodes = strings.TrimSpace(v)
		}
	}
	return fmt.Sprintf("features: %s; %s inodes", feats, inodes)
}

// RootFS describes the file system holding path, for the results.
func RootFS(path string) string { return mountOptions(path) }
