package api

import (
	"github.com/efsd/efsd/internal/api/wire"
	"github.com/efsd/efsd/internal/efs"
)

func describeAP(ap *efs.AccessPoint) wire.AccessPointDescription {
	d := wire.AccessPointDescription{
		ClientToken:    ref(ap.ClientToken),
		Tags:           tagsOut(ap.Tags),
		AccessPointId:  ref(ap.ID),
		AccessPointArn: ref(ap.ARN()),
		FileSystemId:   ref(ap.FileSystemID),
		RootDirectory:  &wire.RootDirectory{Path: ref(ap.RootPath)},
		OwnerId:        ref(ap.Account),
		LifeCycleState: ref(string(ap.State)),
	}
	if name, ok := ap.Name(); ok {
		d.Name = ref(name)
	}
	if u := ap.PosixUser; u != nil {
		d.PosixUser = &wire.PosixUser{Uid: ref(int64(u.UID)), Gid: ref(int64(u.GID))}
		for _, g := range u.SecondaryGIDs {
			d.PosixUser.SecondaryGids = append(d.PosixUser.SecondaryGids, int64(g))
		}
	}
	if ci := ap.CreationInfo; ci != nil {
		d.RootDirectory.CreationInfo = &wire.CreationInfo{OwnerUid: ref(int64(ci.OwnerUID)), OwnerGid: ref(int64(ci.OwnerGID)),
			Permissions: ref(ci.Permissions)}
	}
	return d
}

func (s *Server) createAccessPoint(c *call) (any, error) {
	in, err := wire.DecodeCreateAccessPoint(c.r, c.body)
	if err != nil {
		return nil, err
	}
	cin := efs.CreateAccessPointInput{
		ClientToken:  val(in.ClientToken),
		FileSystemID: val(in.FileSystemId),
		Tags:         tagsIn(in.Tags),
	}
	if u := in.PosixUser; u != nil {
		cin.PosixUser = &efs.PosixUser{UID: uint32(val(u.Uid)), GID: uint32(val(u.Gid))}
		for _, g := range u.SecondaryGids {
			cin.PosixUser.SecondaryGIDs = append(cin.PosixUser.SecondaryGIDs, uint32(g))
		}
	}
	if rd := in.RootDirectory; rd != nil {
		cin.RootPath = val(rd.Path)
		if ci := rd.CreationInfo; ci != nil {
			cin.CreationInfo = &efs.CreationInfo{OwnerUID: uint32(val(ci.OwnerUid)), OwnerGID: uint32(val(ci.OwnerGid)),
				Permissions: val(ci.Permissions)}
		}
	}
	ap, err := s.svc.CreateAccessPoint(c.ctx, c.p, cin)
	if err != nil {
		return nil, err
	}
	d := describeAP(ap)
	return &d, nil
}

func (s *Server) describeAccessPoints(c *call) (any, error) {
	in, err := wire.DecodeDescribeAccessPoints(c.r, c.body)
	if err != nil {
		return nil, err
	}
	page, err := s.svc.DescribeAccessPoints(c.ctx, c.p, val(in.AccessPointId), val(in.FileSystemId), val(in.NextToken), int(val(in.MaxResults)))
	if err != nil {
		return nil, err
	}
	out := &wire.DescribeAccessPointsResponse{
		NextToken:    optional(page.Next),
		AccessPoints: make([]wire.AccessPointDescription, 0, len(page.AccessPoints)),
	}
	for _, ap := range page.AccessPoints {
		out.AccessPoints = append(out.AccessPoints, describeAP(ap))
	}
	return out, nil
}

func (s *Server) deleteAccessPoint(c *call) (any, error) {
	in, err := wire.DecodeDeleteAccessPoint(c.r, c.body)
	if err != nil {
		return nil, err
	}
	return nil, s.svc.DeleteAccessPoint(c.ctx, c.p, val(in.AccessPointId))
}
