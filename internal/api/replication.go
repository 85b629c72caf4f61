package api

import (
	"github.com/efsd/efsd/internal/api/wire"
	"github.com/efsd/efsd/internal/efs"
)

func (s *Server) createReplicationConfiguration(c *call) (any, error) {
	in, err := wire.DecodeCreateReplicationConfiguration(c.r, c.body)
	if err != nil {
		return nil, err
	}
	dests := make([]efs.DestinationInput, 0, len(in.Destinations))
	for _, d := range in.Destinations {
		dests = append(dests, efs.DestinationInput{
			Region:               val(d.Region),
			AvailabilityZoneName: val(d.AvailabilityZoneName),
			KmsKeyID:             val(d.KmsKeyId),
			FileSystemID:         val(d.FileSystemId),
			RoleARN:              val(d.RoleArn),
		})
	}
	r, err := s.svc.CreateReplicationConfiguration(c.ctx, c.p, val(in.SourceFileSystemId), dests)
	if err != nil {
		return nil, err
	}
	return describeReplication(r), nil
}

func (s *Server) describeReplicationConfigurations(c *call) (any, error) {
	in, err := wire.DecodeDescribeReplicationConfigurations(c.r, c.body)
	if err != nil {
		return nil, err
	}
	page, err := s.svc.DescribeReplicationConfigurations(c.ctx, c.p, val(in.FileSystemId), val(in.NextToken), int(val(in.MaxResults)))
	if err != nil {
		return nil, err
	}
	out := &wire.DescribeReplicationConfigurationsResponse{
		Replications: make([]wire.ReplicationConfigurationDescription, 0, len(page.Replications)),
		NextToken:    optional(page.Next),
	}
	for _, r := range page.Replications {
		out.Replications = append(out.Replications, *describeReplication(r))
	}
	return out, nil
}

func (s *Server) deleteReplicationConfiguration(c *call) (any, error) {
	in, err := wire.DecodeDeleteReplicationConfiguration(c.r, c.body)
	if err != nil {
		return nil, err
	}
	return nil, s.svc.DeleteReplicationConfiguration(c.ctx, c.p, val(in.SourceFileSystemId), val(in.DeletionMode))
}

func describeReplication(r *efs.Replication) *wire.ReplicationConfigurationDescription {
	d := wire.Destination{
		Status:        ref(r.Status),
		FileSystemId:  ref(r.Dest.ID),
		Region:        ref(r.Dest.Region),
		OwnerId:       ref(r.Dest.Account),
		StatusMessage: optional(r.StatusMessage),
		RoleArn:       optional(r.RoleARN),
	}
	if !r.LastReplicatedAt.IsZero() {
		d.LastReplicatedTimestamp = seconds(r.LastReplicatedAt)
	}
	return &wire.ReplicationConfigurationDescription{
		SourceFileSystemId:          ref(r.Source.ID),
		SourceFileSystemRegion:      ref(r.Source.Region),
		SourceFileSystemArn:         ref(r.SourceARN()),
		OriginalSourceFileSystemArn: ref(r.OriginalSourceARN),
		CreationTime:                seconds(r.CreatedAt),
		SourceFileSystemOwnerId:     ref(r.Source.Account),
		Destinations:                []wire.Destination{d},
	}
}
