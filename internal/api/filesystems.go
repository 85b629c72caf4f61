package api

import (
	"github.com/efsd/efsd/internal/api/wire"
	"github.com/efsd/efsd/internal/efs"
)

func (s *Server) createFileSystem(c *call) (any, error) {
	in, err := wire.DecodeCreateFileSystem(c.r, c.body)
	if err != nil {
		return nil, err
	}
	fs, err := s.svc.CreateFileSystem(c.ctx, c.p, efs.CreateFileSystemInput{
		CreationToken:         val(in.CreationToken),
		PerformanceMode:       val(in.PerformanceMode),
		Encrypted:             val(in.Encrypted),
		KmsKeyID:              val(in.KmsKeyId),
		ThroughputMode:        val(in.ThroughputMode),
		ProvisionedThroughput: in.ProvisionedThroughputInMibps,
		AvailabilityZoneName:  val(in.AvailabilityZoneName),
		Backup:                in.Backup,
		Tags:                  tagsIn(in.Tags),
	})
	if err != nil {
		return nil, err
	}
	return describeFS(fs), nil
}

func (s *Server) describeFileSystems(c *call) (any, error) {
	in, err := wire.DecodeDescribeFileSystems(c.r, c.body)
	if err != nil {
		return nil, err
	}
	page, err := s.svc.DescribeFileSystems(c.ctx, c.p, efs.DescribeFileSystemsInput{
		FileSystemID:  val(in.FileSystemId),
		CreationToken: val(in.CreationToken),
		Marker:        val(in.Marker),
		MaxItems:      int(val(in.MaxItems)),
	})
	if err != nil {
		return nil, err
	}
	out := &wire.DescribeFileSystemsResponse{
		Marker:      in.Marker,
		NextMarker:  optional(page.NextMarker),
		FileSystems: make([]wire.FileSystemDescription, 0, len(page.FileSystems)),
	}
	for _, fs := range page.FileSystems {
		out.FileSystems = append(out.FileSystems, describeFS(fs))
	}
	return out, nil
}

func (s *Server) deleteFileSystem(c *call) (any, error) {
	in, err := wire.DecodeDeleteFileSystem(c.r, c.body)
	if err != nil {
		return nil, err
	}
	return nil, s.svc.DeleteFileSystem(c.ctx, c.p, val(in.FileSystemId))
}

func (s *Server) updateFileSystem(c *call) (any, error) {
	in, err := wire.DecodeUpdateFileSystem(c.r, c.body)
	if err != nil {
		return nil, err
	}
	fs, err := s.svc.UpdateFileSystem(c.ctx, c.p, efs.UpdateFileSystemInput{
		FileSystemID:          val(in.FileSystemId),
		ThroughputMode:        val(in.ThroughputMode),
		ProvisionedThroughput: in.ProvisionedThroughputInMibps,
	})
	if err != nil {
		return nil, err
	}
	return describeFS(fs), nil
}

func (s *Server) updateFileSystemProtection(c *call) (any, error) {
	in, err := wire.DecodeUpdateFileSystemProtection(c.r, c.body)
	if err != nil {
		return nil, err
	}
	prot, err := s.svc.UpdateFileSystemProtection(c.ctx, c.p, val(in.FileSystemId), val(in.ReplicationOverwriteProtection))
	if err != nil {
		return nil, err
	}
	return &wire.FileSystemProtectionDescription{ReplicationOverwriteProtection: ref(prot)}, nil
}
