package mounts

import (
	"context"
	"net/netip"
	"sync"

	"github.com/efsd/efsd/internal/efs"
)

// admission decides at every accept whether a client may connect to a
// mount target: its source address must be in a range that the mount
// target's security groups admit to the NFS port. The ranges are cached
// until the domain's data-plane epoch moves, which it does when the mount
// target's groups are changed or groups are declared, so a change holds
// for the next connection without a store query per accept.
type admission struct {
	m  *Manager
	mt *efs.MountTarget

	mu      sync.Mutex
	valid   bool
	epoch   uint64
	sources efs.Sources
}

func (m *Manager) admission(mt *efs.MountTarget) *admission {
	return &admission{m: m, mt: mt}
}

// admit reports whether a client at addr may connect. When the groups
// cannot be read it refuses (and reads again at the next connection):
// failing closed is what a firewall owes.
func (a *admission) admit(addr netip.Addr) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	// The epoch is read before loading, so a change during the load makes
	// the next accept load again.
	epoch := a.m.svc.DataPlaneEpoch()
	if !a.valid || a.epoch != epoch {
		src, err := a.m.svc.MountTargetSources(context.Background(), a.mt, a.m.port)
		if err != nil {
			a.m.log.Error("load security groups of mount target; refusing", "mountTargetId", a.mt.ID, "err", err)
			a.valid = false
			return false
		}
		a.sources, a.epoch, a.valid = src, epoch, true
	}
	return a.sources.Contains(addr)
}
