package fsview

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// Identity is the POSIX identity an operation acts as.
type Identity struct {
	UID, GID uint32
	Groups   []uint32 // supplementary groups
}

// Key is a string naming the identity (for cache keys).
func (id Identity) Key() string {
	b := make([]byte, 0, 24+8*len(id.Groups))
	b = strconv.AppendUint(b, uint64(id.UID), 10)
	b = append(b, ':')
	b = strconv.AppendUint(b, uint64(id.GID), 10)
	for _, g := range id.Groups {
		b = append(b, ',')
		b = strconv.AppendUint(b, uint64(g), 10)
	}
	return string(b)
}

// SquashRoot maps uid 0 and gid 0 (primary or supplementary) to nobody's, as knfsd's root_squash
// does: EFS squashes root for clients a file system policy does not grant ClientRootAccess.
func (id Identity) SquashRoot() Identity {
	if id.UID == 0 {
		id.UID = Nobody.UID
	}
	if id.GID == 0 {
		id.GID = Nobody.GID
	}
	if slices.Contains(id.Groups, 0) {
		groups := make([]uint32, 0, len(id.Groups))
		for _, g := range id.Groups {
			if g == 0 {
				g = Nobody.GID
			}
			groups = append(groups, g)
		}
		id.Groups = groups
	}
	return id
}

// Nobody is the identity of requests without AUTH_UNIX credentials (AUTH_NULL), as knfsd's anonuid.
var Nobody = Identity{UID: 65534, GID: 65534}

// isServer reports whether id acts as the process itself: root with the process's group (root's
// supplementary groups change nothing, root passes every permission check), so no switch is needed.
func (id Identity) isServer() bool {
	return id.UID == 0 && int(id.GID) == creds.gid
}

// Identity switching. efsd runs as root; to act as a client identity it sets the calling OS
// thread's file-system UID and GID (setfsuid/setfsgid) and supplementary groups (raw setgroups),
// which on Linux are per thread, around one operation with the goroutine locked to its thread. The
// kernel then does every permission check (mode bits, owner, group, secondary groups, sticky
// directories, ACLs) and gives new files their owner and group (including setgid directory
// inheritance) exactly as for a local process of that identity. The Go runtime never clones a new
// thread from a locked one (it uses its template thread), so the switched credentials stay on this
// thread, and they are restored before it is unlocked.
var creds struct {
	once   sync.Once
	ok     bool  // the process can switch (effective UID 0)
	gid    int   // the process's effective GID, restored after each switch
	groups []int // the process's own supplementary groups, restored after each switch
}

// CanSwitchIdentity reports whether operations can act as client identities (efsd runs as root).
func CanSwitchIdentity() bool {
	creds.once.Do(func() {
		if os.Geteuid() != 0 {
			return
		}
		g, err := unix.Getgroups()
		if err != nil {
			return
		}
		creds.groups = g
		creds.gid = os.Getegid()
		creds.ok = true
	})
	return creds.ok
}

// RunAs runs fn as id. Without the privilege to switch, fn runs as the process itself (the caller
// decides whether that is acceptable; the NFS servers log it once).
func RunAs(id Identity, fn func() error) error {
	if !CanSwitchIdentity() || id.isServer() {
		return fn()
	}
	runtime.LockOSThread()
	if err := setThreadIdentity(id); err != nil {
		restoreThreadIdentity()
		runtime.UnlockOSThread()
		return err
	}
	defer func() {
		restoreThreadIdentity()
		runtime.UnlockOSThread()
	}()
	return fn()
}

func setThreadIdentity(id Identity) error {
	groups := make([]int, len(id.Groups))
	for i, g := range id.Groups {
		groups[i] = int(g)
	}
	if err := unix.Setgroups(groups); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	_, _ = unix.SetfsgidRetGid(int(id.GID))
	if cur, _ := unix.SetfsgidRetGid(int(id.GID)); cur != int(id.GID) {
		return fmt.Errorf("setfsgid(%d) failed", id.GID)
	}
	_, _ = unix.SetfsuidRetUid(int(id.UID))
	if cur, _ := unix.SetfsuidRetUid(int(id.UID)); cur != int(id.UID) {
		return fmt.Errorf("setfsuid(%d) failed", id.UID)
	}
	return nil
}

// restoreThreadIdentity gives the thread back the process's identity. Failing to do so would leave a
// thread acting as a client identity; that cannot happen to a root process (CAP_SETUID and
// CAP_SETGID are not dropped by setfsuid), and if it ever did, crashing is the only safe answer.
func restoreThreadIdentity() {
	_, _ = unix.SetfsuidRetUid(0)
	if cur, _ := unix.SetfsuidRetUid(0); cur != 0 {
		panic("fsview: cannot restore the thread's file-system UID to 0")
	}
	_, _ = unix.SetfsgidRetGid(creds.gid)
	if cur, _ := unix.SetfsgidRetGid(creds.gid); cur != creds.gid {
		panic("fsview: cannot restore the thread's file-system GID")
	}
	if err := unix.Setgroups(creds.groups); err != nil {
		panic("fsview: cannot restore the thread's supplementary groups: " + err.Error())
	}
}
