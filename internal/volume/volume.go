// Package volume holds the data of file systems: one directory tree per
// file system under the data directory, and a meter that measures each
// tree the way EFS meters storage.
package volume

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/efsd/efsd/internal/efs"
)

// Manager implements efs.Volumes over directories:
// <root>/<account>/<region>/<file-system-id>.
type Manager struct {
	root     string
	interval time.Duration
	now      func() time.Time
	log      *slog.Logger

	mu    sync.Mutex
	usage map[efs.FSKey]efs.Usage
	// next is when each volume is due for measuring again: a volume whose
	// walk takes long is measured less often (at most 5% of the time spent
	// walking it), so metering a huge tree does not become a constant load.
	next map[efs.FSKey]time.Time
}

// Options tune a Manager. Zero values take defaults.
type Options struct {
	// MeterInterval is how often every volume is measured. Default 5s.
	MeterInterval time.Duration
	Now           func() time.Time
	Logger        *slog.Logger
}

// New returns a Manager rooted at root, creating it if needed.
func New(root string, o Options) (*Manager, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("create volume root: %w", err)
	}
	if o.MeterInterval == 0 {
		o.MeterInterval = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{root: root, interval: o.MeterInterval, now: o.Now, log: o.Logger, usage: map[efs.FSKey]efs.Usage{},
		next: map[efs.FSKey]time.Time{}}, nil
}

// Path is the directory holding the file system's files.
func (m *Manager) Path(k efs.FSKey) string {
	return filepath.Join(m.root, k.Account, k.Region, k.ID)
}

// Create makes each file system's root directory (mode 0755, as an empty
// EFS file system's root) and measures it. The new entries are made
// durable by one fsync per parent directory, so a burst of creates does
// not cost a journal commit each.
func (m *Manager) Create(ks ...efs.FSKey) error {
	parents := map[string]bool{}
	for _, k := range ks {
		if err := os.MkdirAll(m.Path(k), 0o755); err != nil {
			return fmt.Errorf("create volume %s: %w", k, err)
		}
		parents[filepath.Dir(m.Path(k))] = true
	}
	for dir := range parents {
		if err := syncDir(dir); err != nil {
			return err
		}
	}
	for _, k := range ks {
		if err := m.measure(k); err != nil {
			return err
		}
	}
	return nil
}

// Remove deletes the file system's data. The tree is first renamed into a
// trash directory, so it vanishes from its path at once and a crash part
// way through the deletion leaves nothing behind at the volume's path.
func (m *Manager) Remove(k efs.FSKey) error {
	trash := filepath.Join(m.root, ".trash")
	if err := os.MkdirAll(trash, 0o700); err != nil {
		return fmt.Errorf("create trash: %w", err)
	}
	doomed := filepath.Join(trash, k.Account+"-"+k.Region+"-"+k.ID)
	if err := os.Rename(m.Path(k), doomed); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove volume %s: %w", k, err)
	}
	if err := os.RemoveAll(doomed); err != nil {
		return fmt.Errorf("remove volume %s: %w", k, err)
	}
	m.mu.Lock()
	delete(m.usage, k)
	delete(m.next, k)
	m.mu.Unlock()
	return nil
}

// Usage returns the file system's last measured size.
func (m *Manager) Usage(k efs.FSKey) (efs.Usage, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.usage[k]
	return u, ok
}

// Usages returns the last measured size of every file system measured
// since the start (for metrics).
func (m *Manager) Usages() map[efs.FSKey]efs.Usage {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[efs.FSKey]efs.Usage, len(m.usage))
	for k, u := range m.usage {
		out[k] = u
	}
	return out
}

// Run measures every volume each MeterInterval until ctx ends, so that
// SizeInBytes follows the data as it changes.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		m.MeasureAll()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// MeasureAll measures every volume under the root once.
func (m *Manager) MeasureAll() {
	keys, err := m.list()
	if err != nil {
		m.log.Error("list volumes", "err", err)
		return
	}
	for _, k := range keys {
		m.mu.Lock()
		due := m.next[k]
		m.mu.Unlock()
		if m.now().Before(due) {
			continue
		}
		if err := m.measure(k); err != nil && !os.IsNotExist(err) {
			m.log.Warn("measure volume", "fileSystemId", k.ID, "account", k.Account, "region", k.Region, "err", err)
		}
	}
}

func (m *Manager) list() ([]efs.FSKey, error) {
	var keys []efs.FSKey
	matches, err := filepath.Glob(filepath.Join(m.root, "*", "*", "fs-*"))
	if err != nil {
		return nil, err
	}
	for _, p := range matches {
		id := filepath.Base(p)
		region := filepath.Base(filepath.Dir(p))
		account := filepath.Base(filepath.Dir(filepath.Dir(p)))
		keys = append(keys, efs.FSKey{Account: account, Region: region, ID: id})
	}
	return keys, nil
}

func (m *Manager) measure(k efs.FSKey) error {
	at := m.now()
	start := time.Now()
	n, err := Metered(m.Path(k))
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.usage[k] = efs.Usage{Bytes: n, At: at}
	m.next[k] = m.now().Add(20 * time.Since(start))
	m.mu.Unlock()
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
