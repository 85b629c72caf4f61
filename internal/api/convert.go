package api

import (
	"time"

	"github.com/efsd/efsd/internal/api/wire"
	"github.com/efsd/efsd/internal/efs"
)

// ref returns a pointer to v, for the generated wire shapes' optional
// members.
func ref[T any](v T) *T { return &v }

// val returns *p, or the zero value when the member was absent.
func val[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func tagsIn(in []wire.Tag) []efs.Tag {
	out := make([]efs.Tag, 0, len(in))
	for _, t := range in {
		out = append(out, efs.Tag{Key: val(t.Key), Value: val(t.Value)})
	}
	return out
}

func tagsOut(in []efs.Tag) []wire.Tag {
	out := make([]wire.Tag, 0, len(in))
	for _, t := range in {
		out = append(out, wire.Tag{Key: ref(t.Key), Value: ref(t.Value)})
	}
	return out
}

func describeFS(fs *efs.FileSystem) wire.FileSystemDescription {
	d := wire.FileSystemDescription{
		OwnerId:              ref(fs.Account),
		CreationToken:        ref(fs.CreationToken),
		FileSystemId:         ref(fs.ID),
		FileSystemArn:        ref(fs.ARN()),
		CreationTime:         seconds(fs.CreatedAt),
		LifeCycleState:       ref(string(fs.State)),
		NumberOfMountTargets: ref(int64(fs.MountTargets)),
		SizeInBytes: &wire.FileSystemSize{
			Value:           ref(fs.Size.Bytes),
			Timestamp:       seconds(fs.Size.At),
			ValueInStandard: ref(fs.Size.Bytes),
			ValueInIA:       ref(int64(0)),
			ValueInArchive:  ref(int64(0)),
		},
		PerformanceMode:      ref(fs.PerformanceMode),
		Encrypted:            ref(fs.Encrypted),
		KmsKeyId:             optional(fs.KmsKeyID),
		ThroughputMode:       ref(fs.ThroughputMode),
		AvailabilityZoneName: optional(fs.AvailabilityZoneName),
		AvailabilityZoneId:   optional(fs.AvailabilityZoneID),
		Tags:                 tagsOut(fs.Tags),
		FileSystemProtection: &wire.FileSystemProtectionDescription{
			ReplicationOverwriteProtection: ref(fs.Protection),
		},
	}
	if name, ok := fs.Name(); ok {
		d.Name = ref(name)
	}
	if fs.ThroughputMode == efs.Provisioned {
		d.ProvisionedThroughputInMibps = ref(fs.ProvisionedThroughput)
	}
	return d
}

func lifecycleIn(in []wire.LifecyclePolicy) []efs.LifecyclePolicy {
	out := make([]efs.LifecyclePolicy, 0, len(in))
	for _, p := range in {
		out = append(out, efs.LifecyclePolicy{
			TransitionToIA:                  val(p.TransitionToIA),
			TransitionToPrimaryStorageClass: val(p.TransitionToPrimaryStorageClass),
			TransitionToArchive:             val(p.TransitionToArchive),
		})
	}
	return out
}

func lifecycleOut(in []efs.LifecyclePolicy) *wire.LifecycleConfigurationDescription {
	out := &wire.LifecycleConfigurationDescription{LifecyclePolicies: make([]wire.LifecyclePolicy, 0, len(in))}
	for _, p := range in {
		out.LifecyclePolicies = append(out.LifecyclePolicies, wire.LifecyclePolicy{
			TransitionToIA:                  optional(p.TransitionToIA),
			TransitionToPrimaryStorageClass: optional(p.TransitionToPrimaryStorageClass),
			TransitionToArchive:             optional(p.TransitionToArchive),
		})
	}
	return out
}

// seconds renders a time in whole seconds, as EFS reports every timestamp.
// Truncating never moves a time later, so a LastReplicatedTimestamp still
// promises that every change before it is on the destination.
func seconds(t time.Time) *wire.Timestamp { return wire.NewTimestamp(t.Truncate(time.Second)) }
