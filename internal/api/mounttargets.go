package api

import (
	"github.com/efsd/efsd/internal/api/wire"
	"github.com/efsd/efsd/internal/efs"
)

func describeMT(mt *efs.MountTarget) wire.MountTargetDescription {
	return wire.MountTargetDescription{
		OwnerId:              ref(mt.Account),
		MountTargetId:        ref(mt.ID),
		FileSystemId:         ref(mt.FileSystemID),
		SubnetId:             ref(mt.SubnetID),
		LifeCycleState:       ref(string(mt.State)),
		IpAddress:            ref(mt.IP),
		NetworkInterfaceId:   ref(mt.ENI),
		AvailabilityZoneId:   ref(mt.ZoneID),
		AvailabilityZoneName: ref(mt.ZoneName),
		VpcId:                ref(mt.VPCID),
	}
}

func (s *Server) createMountTarget(c *call) (any, error) {
	in, err := wire.DecodeCreateMountTarget(c.r, c.body)
	if err != nil {
		return nil, err
	}
	mt, err := s.svc.CreateMountTarget(c.ctx, c.p, efs.CreateMountTargetInput{
		FileSystemID:   val(in.FileSystemId),
		SubnetID:       val(in.SubnetId),
		IP:             val(in.IpAddress),
		IPType:         val(in.IpAddressType),
		IPv6:           val(in.Ipv6Address),
		SecurityGroups: in.SecurityGroups,
	})
	if err != nil {
		return nil, err
	}
	d := describeMT(mt)
	return &d, nil
}

func (s *Server) describeMountTargets(c *call) (any, error) {
	in, err := wire.DecodeDescribeMountTargets(c.r, c.body)
	if err != nil {
		return nil, err
	}
	page, err := s.svc.DescribeMountTargets(c.ctx, c.p, efs.DescribeMountTargetsInput{
		FileSystemID:  val(in.FileSystemId),
		MountTargetID: val(in.MountTargetId),
		AccessPointID: val(in.AccessPointId),
		Marker:        val(in.Marker),
		MaxItems:      int(val(in.MaxItems)),
	})
	if err != nil {
		return nil, err
	}
	out := &wire.DescribeMountTargetsResponse{
		Marker:       in.Marker,
		NextMarker:   optional(page.NextMarker),
		MountTargets: make([]wire.MountTargetDescription, 0, len(page.MountTargets)),
	}
	for _, mt := range page.MountTargets {
		out.MountTargets = append(out.MountTargets, describeMT(mt))
	}
	return out, nil
}

func (s *Server) deleteMountTarget(c *call) (any, error) {
	in, err := wire.DecodeDeleteMountTarget(c.r, c.body)
	if err != nil {
		return nil, err
	}
	return nil, s.svc.DeleteMountTarget(c.ctx, c.p, val(in.MountTargetId))
}

func (s *Server) describeMountTargetSecurityGroups(c *call) (any, error) {
	in, err := wire.DecodeDescribeMountTargetSecurityGroups(c.r, c.body)
	if err != nil {
		return nil, err
	}
	groups, err := s.svc.DescribeMountTargetSecurityGroups(c.ctx, c.p, val(in.MountTargetId))
	if err != nil {
		return nil, err
	}
	return &wire.DescribeMountTargetSecurityGroupsResponse{SecurityGroups: append([]string{}, groups...)}, nil
}

func (s *Server) modifyMountTargetSecurityGroups(c *call) (any, error) {
	in, err := wire.DecodeModifyMountTargetSecurityGroups(c.r, c.body)
	if err != nil {
		return nil, err
	}
	return nil, s.svc.ModifyMountTargetSecurityGroups(c.ctx, c.p, val(in.MountTargetId), in.SecurityGroups)
}
