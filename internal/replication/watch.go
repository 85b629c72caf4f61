package replication

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// watchMask is every event that means the tree changed.
const watchMask = unix.IN_MODIFY | unix.IN_ATTRIB | unix.IN_CLOSE_WRITE | unix.IN_CREATE |
	unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF

// watcher reports changes anywhere under a directory tree through inotify,
// one watch per directory, added as directories appear. Every event is
// collapsed into one signal on C, so a burst of writes wakes a replication
// worker once. When the kernel's watch limit is reached the watcher keeps
// the watches it has; the worker's periodic rescan covers the rest.
type watcher struct {
	C    chan struct{} // capacity 1
	f    *os.File
	root string

	mu   sync.Mutex
	dirs map[int32]string // watch descriptor → directory
	full bool             // the watch limit was hit
	done chan struct{}
}

func newWatcher(root string) (*watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify init: %w", err)
	}
	w := &watcher{
		C:    make(chan struct{}, 1),
		f:    os.NewFile(uintptr(fd), "inotify"), // non-blocking: reads park in the runtime poller, Close wakes them
		root: root,
		dirs: map[int32]string{},
		done: make(chan struct{}),
	}
	if err := w.addTree(root); err != nil {
		w.f.Close()
		return nil, err
	}
	go w.read()
	return w, nil
}

// Limited reports whether some directories could not be watched.
func (w *watcher) Limited() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.full
}

// addTree watches dir and every directory below it.
func (w *watcher) addTree(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == dir {
				return err
			}
			return nil // vanished meanwhile
		}
		if !d.IsDir() {
			return nil
		}
		wd, err := unix.InotifyAddWatch(int(w.f.Fd()), path, watchMask|unix.IN_ONLYDIR|unix.IN_DONT_FOLLOW)
		if errors.Is(err, unix.ENOSPC) {
			w.mu.Lock()
			w.full = true
			w.mu.Unlock()
			return filepath.SkipAll
		}
		if err != nil {
			if path == dir {
				return fmt.Errorf("watch %s: %w", path, err)
			}
			return nil
		}
		w.mu.Lock()
		w.dirs[int32(wd)] = path
		w.mu.Unlock()
		return nil
	})
}

func (w *watcher) signal() {
	select {
	case w.C <- struct{}{}:
	default:
	}
}

func (w *watcher) read() {
	defer close(w.done)
	buf := make([]byte, 64*1024)
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			return // closed
		}
		changed := false
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			nameLen := int(ev.Len)
			name := ""
			if nameLen > 0 {
				raw := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+nameLen]
				for i, b := range raw {
					if b == 0 {
						raw = raw[:i]
						break
					}
				}
				name = string(raw)
			}
			off += unix.SizeofInotifyEvent + nameLen
			changed = true
			if ev.Mask&unix.IN_IGNORED != 0 {
				w.mu.Lock()
				delete(w.dirs, ev.Wd)
				w.mu.Unlock()
				continue
			}
			if ev.Mask&unix.IN_ISDIR != 0 && ev.Mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0 {
				w.mu.Lock()
				parent := w.dirs[ev.Wd]
				w.mu.Unlock()
				if parent != "" {
					w.addTree(filepath.Join(parent, name))
				}
			}
		}
		if changed {
			w.signal()
		}
	}
}

// Close stops watching.
func (w *watcher) Close() error {
	err := w.f.Close()
	<-w.done
	return err
}
