package mounts

import (
	"io/fs"
	"sync"

	"github.com/efsd/efsd/internal/fsview"
)

func fsMode(perm uint64) fs.FileMode {
	m := fs.FileMode(perm & 0o777)
	if perm&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if perm&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if perm&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// cachedHandles keeps the handle table in memory in front of the durable
// store, so that the many LOOKUPs that find a file where it was write
// nothing; only new or moved files reach the store. The cache is dropped
// whole when it reaches maxCached entries, which bounds its memory.
type cachedHandles struct {
	store fsview.HandleStore
	mu    sync.Mutex
	paths map[handleKey]string
}

type handleKey struct {
	fs  string
	ino uint64
}

func newCachedHandles(s fsview.HandleStore) *cachedHandles {
	return &cachedHandles{store: s, paths: map[handleKey]string{}}
}

func (c *cachedHandles) PutHandle(fsID string, ino uint64, path string) error {
	k := handleKey{fsID, ino}
	c.mu.Lock()
	same := c.paths[k] == path
	c.mu.Unlock()
	if same {
		return nil
	}
	if err := c.store.PutHandle(fsID, ino, path); err != nil {
		return err
	}
	c.remember(k, path)
	return nil
}

const maxCached = 200_000

func (c *cachedHandles) remember(k handleKey, path string) {
	c.mu.Lock()
	if len(c.paths) >= maxCached {
		clear(c.paths)
	}
	c.paths[k] = path
	c.mu.Unlock()
}

func (c *cachedHandles) HandlePath(fsID string, ino uint64) (string, bool, error) {
	k := handleKey{fsID, ino}
	c.mu.Lock()
	p, ok := c.paths[k]
	c.mu.Unlock()
	if ok {
		return p, true, nil
	}
	p, ok, err := c.store.HandlePath(fsID, ino)
	if err == nil && ok {
		c.remember(k, p)
	}
	return p, ok, err
}

func (c *cachedHandles) DeleteHandle(fsID string, ino uint64) error {
	c.mu.Lock()
	delete(c.paths, handleKey{fsID, ino})
	c.mu.Unlock()
	return c.store.DeleteHandle(fsID, ino)
}
