package efs

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// MountTarget is a file system's network endpoint in one availability
// zone: an address of a subnet where an NFS server serves the file system.
type MountTarget struct {
	ID             string
	Account        string
	Region         string
	FileSystemID   string
	SubnetID       string
	VPCID          string
	ZoneName       string
	ZoneID         string
	IP             string
	ENI            string
	SecurityGroups []string
	State          LifeCycleState
	CreatedAt      time.Time
	Seq            int64 `json:"-"`
}

// FSKey names the mount target's file system.
func (mt *MountTarget) FSKey() FSKey {
	return FSKey{Account: mt.Account, Region: mt.Region, ID: mt.FileSystemID}
}

// MaxSecurityGroups is the most security groups a mount target may have.
const MaxSecurityGroups = 5

// CreateMountTargetInput carries CreateMountTarget's parameters.
type CreateMountTargetInput struct {
	FileSystemID   string
	SubnetID       string
	IP             string
	IPType         string
	IPv6           string
	SecurityGroups []string
}

func mtNotFound(id string) *Error {
	return E(MountTargetNotFound, "Mount target '%s' does not exist.", id)
}

// CreateMountTarget creates a mount target in the creating state; the
// mount-target server starts an NFS server at its address and then makes
// it available.
func (s *Service) CreateMountTarget(ctx context.Context, p Principal, in CreateMountTargetInput) (*MountTarget, error) {
	if in.IPType == "IPV6_ONLY" || in.IPType == "DUAL_STACK" || in.IPv6 != "" {
		return nil, E(BadRequest, "efsd subnets have no IPv6 range; use IpAddressType IPV4_ONLY.")
	}
	mt := &MountTarget{
		ID:        s.newID("fsmt-"),
		ENI:       s.newID("eni-"),
		Account:   p.Account,
		Region:    p.Region,
		State:     StateCreating,
		CreatedAt: s.now(),
	}
	err := s.store.Update(ctx, func(tx Tx) error {
		fs, err := loadFS(tx, p, in.FileSystemID)
		if err != nil {
			return err
		}
		if err := requireAvailable(fs); err != nil {
			return err
		}
		n, err := s.network(tx, p.Account, p.Region)
		if err != nil {
			return err
		}
		sub, ok := n.Subnet(in.SubnetID)
		if !ok {
			return E(SubnetNotFound, "Subnet '%s' does not exist in account %s in %s.", in.SubnetID, p.Account, p.Region)
		}
		if fs.AvailabilityZoneName != "" && fs.AvailabilityZoneName != sub.ZoneName {
			return E(AvailabilityZonesMismatch, "File system '%s' is a One Zone file system in %s; subnet '%s' is in %s.",
				fs.ID, fs.AvailabilityZoneName, sub.ID, sub.ZoneName)
		}
		existing, err := tx.MountTargetsOfFS(p.Account, p.Region, fs.ID)
		if err != nil {
			return err
		}
		for _, o := range existing {
			if o.ZoneName == sub.ZoneName {
				return E(MountTargetConflict, "File system '%s' already has mount target '%s' in %s.", fs.ID, o.ID, sub.ZoneName)
			}
			if o.VPCID != sub.VPCID {
				return E(MountTargetConflict, "File system '%s' has mount targets in %s; all its mount targets must be in one VPC.", fs.ID, o.VPCID)
			}
		}
		groups, err := checkSecurityGroups(n, sub.VPCID, in.SecurityGroups)
		if err != nil {
			return err
		}
		ip, err := pickAddress(tx, sub, in.IP, s.addressInUse)
		if err != nil {
			return err
		}
		mt.FileSystemID, mt.SubnetID, mt.VPCID = fs.ID, sub.ID, sub.VPCID
		mt.ZoneName, mt.ZoneID, mt.IP, mt.SecurityGroups = sub.ZoneName, sub.ZoneID, ip, groups
		if err := tx.InsertMountTarget(mt); err != nil {
			if errors.Is(err, ErrConflict) {
				return E(IpAddressInUse, "IP address %s is already in use.", ip)
			}
			return fmt.Errorf("insert mount target: %w", err)
		}
		fs.MountTargets++
		return tx.UpdateFileSystem(fs)
	})
	if err != nil {
		return nil, err
	}
	s.mountTargetsChanged()
	return mt, nil
}

// checkSecurityGroups applies EFS's rules: at most five groups, each in the
// mount target's VPC; none means the VPC's default group.
func checkSecurityGroups(n *Network, vpcID string, ids []string) ([]string, error) {
	if len(ids) > MaxSecurityGroups {
		return nil, E(SecurityGroupLimitExceeded, "A mount target can have at most %d security groups; %d were given.", MaxSecurityGroups, len(ids))
	}
	if len(ids) == 0 {
		g, ok := n.DefaultSecurityGroup(vpcID)
		if !ok {
			return nil, E(SecurityGroupNotFound, "VPC '%s' has no default security group.", vpcID)
		}
		return []string{g.ID}, nil
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		g, ok := n.SecurityGroup(id)
		if !ok || g.VPCID != vpcID {
			return nil, E(SecurityGroupNotFound, "Security group '%s' does not exist in VPC '%s'.", id, vpcID)
		}
		dup := false
		for _, o := range out {
			dup = dup || o == id
		}
		if !dup {
			out = append(out, id)
		}
	}
	return out, nil
}

// pickAddress checks a requested address or assigns the first free one.
// As in AWS, the first four addresses of a subnet and its last are
// reserved.
func pickAddress(tx Tx, sub Subnet, want string, inUse func(string) bool) (string, error) {
	prefix, err := netip.ParsePrefix(sub.CIDR)
	if err != nil {
		return "", fmt.Errorf("subnet %s cidr: %w", sub.ID, err)
	}
	prefix = prefix.Masked()
	first := prefix.Addr()
	size := 1 << (first.BitLen() - prefix.Bits())
	usable := func(a netip.Addr) bool {
		if !prefix.Contains(a) {
			return false
		}
		off := int(a.As4()[3]) - int(first.As4()[3]) + 256*(int(a.As4()[2])-int(first.As4()[2]))
		return size <= 4 || off >= 4 && off < size-1
	}
	if want != "" {
		a, err := netip.ParseAddr(want)
		if err != nil || !usable(a) {
			return "", E(BadRequest, "IP address %s is not a usable address of subnet '%s' (%s).", want, sub.ID, sub.CIDR)
		}
		if _, err := tx.MountTargetByIP(a.String()); err == nil {
			return "", E(IpAddressInUse, "IP address %s is already in use.", a)
		} else if !errors.Is(err, ErrNotFound) {
			return "", err
		}
		if inUse(a.String()) {
			return "", E(IpAddressInUse, "IP address %s is already in use on this host.", a)
		}
		return a.String(), nil
	}
	a := first
	for range size {
		if usable(a) {
			if _, err := tx.MountTargetByIP(a.String()); errors.Is(err, ErrNotFound) {
				if !inUse(a.String()) {
					return a.String(), nil
				}
			} else if err != nil {
				return "", err
			}
		}
		a = a.Next()
	}
	return "", E(NoFreeAddressesInSubnet, "Subnet '%s' (%s) has no free address.", sub.ID, sub.CIDR)
}

// DeleteMountTarget moves a mount target to deleting; the mount-target
// server stops its NFS server and then removes it.
func (s *Service) DeleteMountTarget(ctx context.Context, p Principal, id string) error {
	err := s.store.Update(ctx, func(tx Tx) error {
		mt, err := tx.MountTarget(p.Account, p.Region, id)
		if errors.Is(err, ErrNotFound) {
			return mtNotFound(id)
		}
		if err != nil {
			return err
		}
		if mt.State == StateDeleting {
			return nil
		}
		mt.State = StateDeleting
		return tx.UpdateMountTarget(mt)
	})
	if err == nil {
		s.mountTargetsChanged()
	}
	return err
}

// DescribeMountTargetsInput selects mount targets: exactly one of the IDs.
type DescribeMountTargetsInput struct {
	FileSystemID  string
	MountTargetID string
	AccessPointID string
	Marker        string
	MaxItems      int
}

// MountTargetPage is one page of mount targets.
type MountTargetPage struct {
	MountTargets []*MountTarget
	NextMarker   string
}

// DescribeMountTargets describes one mount target, or pages through a file
// system's (an access point names its file system).
func (s *Service) DescribeMountTargets(ctx context.Context, p Principal, in DescribeMountTargetsInput) (*MountTargetPage, error) {
	set := 0
	for _, v := range []string{in.FileSystemID, in.MountTargetID, in.AccessPointID} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		return nil, E(BadRequest, "Specify exactly one of FileSystemId, MountTargetId or AccessPointId.")
	}
	limit := in.MaxItems
	if limit <= 0 {
		limit = DefaultPageSize
	}
	after, err := decodeMarker(in.Marker)
	if err != nil {
		return nil, err
	}
	out := &MountTargetPage{MountTargets: []*MountTarget{}}
	err = s.store.View(ctx, func(tx Tx) error {
		if in.MountTargetID != "" {
			mt, err := tx.MountTarget(p.Account, p.Region, in.MountTargetID)
			if errors.Is(err, ErrNotFound) {
				return mtNotFound(in.MountTargetID)
			}
			out.MountTargets = append(out.MountTargets, mt)
			return err
		}
		fsID := in.FileSystemID
		if in.AccessPointID != "" {
			ap, err := loadAP(tx, p, in.AccessPointID)
			if err != nil {
				return err
			}
			fsID = ap.FileSystemID
		}
		fs, err := loadFS(tx, p, fsID)
		if err != nil {
			return err
		}
		page, err := tx.MountTargetsPage(p.Account, p.Region, fs.ID, after, limit+1)
		if err != nil {
			return err
		}
		out.MountTargets, out.NextMarker = trimPage(page, limit, func(mt *MountTarget) int64 { return mt.Seq })
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// mountTarget loads one of p's mount targets in whatever state it is: the
// security group operations work in every state but deleted (their API
// reference pages), so that Terraform can refresh a mount target that is
// still being created or deleted.
func mountTarget(tx Tx, p Principal, id string) (*MountTarget, error) {
	mt, err := tx.MountTarget(p.Account, p.Region, id)
	if errors.Is(err, ErrNotFound) {
		return nil, mtNotFound(id)
	}
	return mt, err
}

// DescribeMountTargetSecurityGroups lists a mount target's security groups.
func (s *Service) DescribeMountTargetSecurityGroups(ctx context.Context, p Principal, id string) ([]string, error) {
	var out []string
	err := s.store.View(ctx, func(tx Tx) error {
		mt, err := mountTarget(tx, p, id)
		if err != nil {
			return err
		}
		out = mt.SecurityGroups
		return nil
	})
	return out, err
}

// ModifyMountTargetSecurityGroups replaces a mount target's security
// groups. New connections to the mount target are admitted by the new
// groups at once; connections already open stay, as EC2's tracked
// connections do.
func (s *Service) ModifyMountTargetSecurityGroups(ctx context.Context, p Principal, id string, groups []string) error {
	err := s.store.Update(ctx, func(tx Tx) error {
		mt, err := mountTarget(tx, p, id)
		if err != nil {
			return err
		}
		n, err := s.network(tx, p.Account, p.Region)
		if err != nil {
			return err
		}
		if mt.SecurityGroups, err = checkSecurityGroups(n, mt.VPCID, groups); err != nil {
			return err
		}
		return tx.UpdateMountTarget(mt)
	})
	if err == nil {
		s.dataPlaneChanged()
	}
	return err
}

// MountTargetsChanged is signalled (coalesced) when mount targets are
// created or deleted; the mount-target server listens to it.
func (s *Service) MountTargetsChanged() <-chan struct{} { return s.mtChanged }

func (s *Service) mountTargetsChanged() {
	select {
	case s.mtChanged <- struct{}{}:
	default:
	}
}

// AllMountTargets lists every mount target of every account, for the
// mount-target server.
func (s *Service) AllMountTargets(ctx context.Context) ([]*MountTarget, error) {
	var out []*MountTarget
	err := s.store.View(ctx, func(tx Tx) error {
		var err error
		out, err = tx.AllMountTargets()
		return err
	})
	return out, err
}

// addressInUse asks the data plane whether an address is held by another
// program.
func (s *Service) addressInUse(ip string) bool {
	return s.cfg.AddressInUse != nil && s.cfg.AddressInUse(ip)
}

// MountTargetFailed records that a mount target's NFS server cannot listen
// (its address was taken, or is not on this host): it moves to error, where
// it stays until it is deleted, instead of staying creating or available
// without a server. The cause is the data plane's to log.
func (s *Service) MountTargetFailed(ctx context.Context, mt *MountTarget) error {
	return s.store.Update(ctx, func(tx Tx) error {
		cur, err := tx.MountTarget(mt.Account, mt.Region, mt.ID)
		if err != nil {
			return err
		}
		if cur.State != StateCreating && cur.State != StateAvailable {
			return nil
		}
		cur.State = StateError
		return tx.UpdateMountTarget(cur)
	})
}

// MountTargetServing records that a creating mount target's NFS server is
// up: the mount target becomes available.
func (s *Service) MountTargetServing(ctx context.Context, mt *MountTarget) error {
	return s.store.Update(ctx, func(tx Tx) error {
		cur, err := tx.MountTarget(mt.Account, mt.Region, mt.ID)
		if err != nil {
			return err
		}
		if cur.State != StateCreating {
			return nil
		}
		cur.State = StateAvailable
		return tx.UpdateMountTarget(cur)
	})
}

// FinishMountTargetDeletion removes a deleting mount target once its NFS
// server has stopped.
func (s *Service) FinishMountTargetDeletion(ctx context.Context, mt *MountTarget) error {
	return s.store.Update(ctx, func(tx Tx) error {
		cur, err := tx.MountTarget(mt.Account, mt.Region, mt.ID)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if cur.State != StateDeleting {
			return nil
		}
		if err := tx.DeleteMountTarget(cur.Account, cur.Region, cur.ID); err != nil {
			return err
		}
		fs, err := tx.FileSystem(cur.Account, cur.Region, cur.FileSystemID)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		fs.MountTargets = max(fs.MountTargets-1, 0)
		return tx.UpdateFileSystem(fs)
	})
}
