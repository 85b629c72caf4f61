package api

import (
	"github.com/efsd/efsd/internal/api/wire"
)

func (s *Server) putFileSystemPolicy(c *call) (any, error) {
	in, err := wire.DecodePutFileSystemPolicy(c.r, c.body)
	if err != nil {
		return nil, err
	}
	fs, err := s.svc.PutFileSystemPolicy(c.ctx, c.p, val(in.FileSystemId), val(in.Policy))
	if err != nil {
		return nil, err
	}
	return &wire.FileSystemPolicyDescription{FileSystemId: ref(fs.ID), Policy: ref(fs.Policy)}, nil
}

func (s *Server) describeFileSystemPolicy(c *call) (any, error) {
	in, err := wire.DecodeDescribeFileSystemPolicy(c.r, c.body)
	if err != nil {
		return nil, err
	}
	fs, err := s.svc.DescribeFileSystemPolicy(c.ctx, c.p, val(in.FileSystemId))
	if err != nil {
		return nil, err
	}
	return &wire.FileSystemPolicyDescription{FileSystemId: ref(fs.ID), Policy: ref(fs.Policy)}, nil
}

func (s *Server) deleteFileSystemPolicy(c *call) (any, error) {
	in, err := wire.DecodeDeleteFileSystemPolicy(c.r, c.body)
	if err != nil {
		return nil, err
	}
	return nil, s.svc.DeleteFileSystemPolicy(c.ctx, c.p, val(in.FileSystemId))
}

func (s *Server) putLifecycleConfiguration(c *call) (any, error) {
	in, err := wire.DecodePutLifecycleConfiguration(c.r, c.body)
	if err != nil {
		return nil, err
	}
	pols, err := s.svc.PutLifecycleConfiguration(c.ctx, c.p, val(in.FileSystemId), lifecycleIn(in.LifecyclePolicies))
	if err != nil {
		return nil, err
	}
	return lifecycleOut(pols), nil
}

func (s *Server) describeLifecycleConfiguration(c *call) (any, error) {
	in, err := wire.DecodeDescribeLifecycleConfiguration(c.r, c.body)
	if err != nil {
		return nil, err
	}
	pols, err := s.svc.DescribeLifecycleConfiguration(c.ctx, c.p, val(in.FileSystemId))
	if err != nil {
		return nil, err
	}
	return lifecycleOut(pols), nil
}

func (s *Server) putBackupPolicy(c *call) (any, error) {
	in, err := wire.DecodePutBackupPolicy(c.r, c.body)
	if err != nil {
		return nil, err
	}
	status, err := s.svc.PutBackupPolicy(c.ctx, c.p, val(in.FileSystemId), val(in.BackupPolicy.Status))
	if err != nil {
		return nil, err
	}
	return &wire.BackupPolicyDescription{BackupPolicy: &wire.BackupPolicy{Status: ref(status)}}, nil
}

func (s *Server) describeBackupPolicy(c *call) (any, error) {
	in, err := wire.DecodeDescribeBackupPolicy(c.r, c.body)
	if err != nil {
		return nil, err
	}
	status, err := s.svc.DescribeBackupPolicy(c.ctx, c.p, val(in.FileSystemId))
	if err != nil {
		return nil, err
	}
	return &wire.BackupPolicyDescription{BackupPolicy: &wire.BackupPolicy{Status: ref(status)}}, nil
}

// preference renders the account's ID preference; both resource kinds it
// governs always share it.
func preference(idType string) *wire.ResourceIdPreference {
	return &wire.ResourceIdPreference{ResourceIdType: ref(idType), Resources: []string{"FILE_SYSTEM", "MOUNT_TARGET"}}
}

func (s *Server) putAccountPreferences(c *call) (any, error) {
	in, err := wire.DecodePutAccountPreferences(c.r, c.body)
	if err != nil {
		return nil, err
	}
	idType, err := s.svc.PutAccountPreferences(c.ctx, c.p, val(in.ResourceIdType))
	if err != nil {
		return nil, err
	}
	return &wire.PutAccountPreferencesResponse{ResourceIdPreference: preference(idType)}, nil
}

func (s *Server) describeAccountPreferences(c *call) (any, error) {
	if _, err := wire.DecodeDescribeAccountPreferences(c.r, c.body); err != nil {
		return nil, err
	}
	idType, err := s.svc.DescribeAccountPreferences(c.ctx, c.p)
	if err != nil {
		return nil, err
	}
	return &wire.DescribeAccountPreferencesResponse{ResourceIdPreference: preference(idType)}, nil
}
