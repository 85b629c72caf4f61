// Package storetest is the conformance suite every efs.Store
// implementation must pass (Run), and every fsview.HandleStore
// implementation too (RunHandles). It holds a store to the contract
// documented on efs.Store and efs.Tx: each Tx method has a test that
// round-trips whole records, checks ErrNotFound and ErrConflict, order,
// paging, isolation between accounts and regions, and rollback.
package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/efsd/efsd/internal/efs"
)

// Run runs the suite against stores made by open; each subtest gets a
// fresh, empty store.
func Run(t *testing.T, open func(t *testing.T) efs.Store) {
	tests := []struct {
		name string
		run  func(*testing.T, efs.Store)
	}{
		{"FileSystemRoundTrip", testFileSystemRoundTrip},
		{"FileSystemConflicts", testFileSystemConflicts},
		{"FileSystemPaging", testFileSystemPaging},
		{"Due", testDue},
		{"AccountPreference", testAccountPreference},
		{"ReplicationRoundTrip", testReplicationRoundTrip},
		{"ReplicationConflicts", testReplicationConflicts},
		{"ReplicationsByFSID", testReplicationsByFSID},
		{"VisibleReplications", testVisibleReplications},
		{"Network", testNetwork},
		{"NextVPCBlock", testNextVPCBlock},
		{"MountTargetRoundTrip", testMountTargetRoundTrip},
		{"MountTargetConflicts", testMountTargetConflicts},
		{"MountTargetLists", testMountTargetLists},
		{"AccessPointRoundTrip", testAccessPointRoundTrip},
		{"AccessPointConflicts", testAccessPointConflicts},
		{"AccessPointLists", testAccessPointLists},
		{"DeleteAccessPointsOfFS", testDeleteAccessPointsOfFS},
		{"Isolation", testIsolation},
		{"Rollback", testRollback},
		{"RetryAfterConflict", testRetryAfterConflict},
		{"ViewIsReadOnly", testViewIsReadOnly},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
	}
}

// The suite's records live in two accounts and two regions.
var (
	pA     = efs.Principal{Account: "111111111111", Region: "us-east-1"}
	pA2    = efs.Principal{Account: "111111111111", Region: "eu-west-1"} // same account, other region
	pB     = efs.Principal{Account: "222222222222", Region: "us-east-1"} // other account, same region
	pB2    = efs.Principal{Account: "222222222222", Region: "eu-west-1"}
	scopes = []efs.Principal{pA, pA2, pB, pB2}
)

// t0 has nanoseconds so that a store rounding times is caught.
var t0 = time.Date(2026, 11, 27, 12, 0, 0, 123456789, time.UTC)

// newFS returns a file system with every stored field set (DueAt aside:
// it makes the file system due). Its creation token is "tok-"+id.
func newFS(p efs.Principal, id string) *efs.FileSystem {
	return &efs.FileSystem{
		ID: id, Account: p.Account, Region: p.Region, CreationToken: "tok-" + id, CreatedAt: t0,
		State: efs.StateAvailable, PerformanceMode: efs.GeneralPurpose, ThroughputMode: "provisioned",
		ProvisionedThroughput: 12.5, Encrypted: true,
		KmsKeyID:             "arn:aws:kms:" + p.Region + ":" + p.Account + ":key/k1",
		AvailabilityZoneName: p.Region + "a", AvailabilityZoneID: "az-1", Protection: efs.ProtectionEnabled,
		Tags:              []efs.Tag{{Key: "Name", Value: id}, {Key: "team", Value: "a b\n\"c\""}},
		Policy:            `{"Version":"2012-10-17","Statement":[]}`,
		LifecyclePolicies: []efs.LifecyclePolicy{{TransitionToIA: "AFTER_30_DAYS", TransitionToPrimaryStorageClass: "AFTER_1_ACCESS", TransitionToArchive: "AFTER_90_DAYS"}},
		BackupStatus:      efs.BackupEnabled, OriginalSourceARN: "arn:aws:elasticfilesystem:eu-west-1:333333333333:file-system/fs-0",
		MountTargets: 2, ThroughputChangedAt: t0.Add(-time.Hour),
	}
}

// newMT returns a mount target with every stored field set.
func newMT(p efs.Principal, id, fsID, ip string) *efs.MountTarget {
	return &efs.MountTarget{
		ID: id, Account: p.Account, Region: p.Region, FileSystemID: fsID, SubnetID: "subnet-1", VPCID: "vpc-1",
		ZoneName: p.Region + "a", ZoneID: "az-1", IP: ip, ENI: "eni-" + id, SecurityGroups: []string{"sg-1", "sg-2"},
		State: efs.StateAvailable, CreatedAt: t0,
	}
}

// newAP returns an access point with every stored field set. Its client
// token is "tok-"+id.
func newAP(p efs.Principal, id, fsID string) *efs.AccessPoint {
	return &efs.AccessPoint{
		ID: id, Account: p.Account, Region: p.Region, FileSystemID: fsID, ClientToken: "tok-" + id,
		Tags:         []efs.Tag{{Key: "Name", Value: id}},
		PosixUser:    &efs.PosixUser{UID: 1000, GID: 1001, SecondaryGIDs: []uint32{4, 27}},
		RootPath:     "/data/" + id,
		CreationInfo: &efs.CreationInfo{OwnerUID: 1000, OwnerGID: 1001, Permissions: "0750"},
		State:        efs.StateAvailable, CreatedAt: t0,
	}
}

// newRep returns a replication configuration with every stored field set
// but those that hide it from a side or schedule its deletion.
func newRep(id string, src, dst efs.FSKey) *efs.Replication {
	return &efs.Replication{
		ID: id, Source: src, Dest: dst,
		OriginalSourceARN: "arn:aws:elasticfilesystem:" + src.Region + ":" + src.Account + ":file-system/" + src.ID,
		CreatedAt:         t0, RoleARN: "arn:aws:iam::" + src.Account + ":role/r", NewDest: true,
		Status: efs.RepEnabled, StatusMessage: "ok", LastReplicatedAt: t0.Add(time.Minute),
		Peer: "peer-b", PeerSide: efs.PeerDestination, PeerAcked: true,
	}
}

// newNetwork returns a network with every field set; n tells networks apart.
func newNetwork(n int) *efs.Network {
	vpc := fmt.Sprintf("vpc-%d", n)
	return &efs.Network{
		VPCs:    []efs.VPC{{ID: vpc, CIDR: fmt.Sprintf("127.0.%d.0/20", n*16), Default: true}},
		Subnets: []efs.Subnet{{ID: fmt.Sprintf("subnet-%d", n), VPCID: vpc, ZoneName: "us-east-1a", ZoneID: "use1-az1", CIDR: fmt.Sprintf("127.0.%d.0/24", n*16)}},
		SecurityGroups: []efs.SecurityGroup{{ID: fmt.Sprintf("sg-%d", n), VPCID: vpc, Name: "default",
			Description: "made through EC2",
			Ingress:     []efs.IngressRule{{Protocol: "tcp", FromPort: 2049, ToPort: 2049, CIDR: "10.0.0.0/16", Description: "nfs"}},
			Egress:      []efs.IngressRule{{Protocol: "tcp", FromPort: 1, ToPort: 65535, CIDR: "0.0.0.0/0", Description: "out"}}, API: true}},
	}
}

func key(p efs.Principal, id string) efs.FSKey {
	return efs.FSKey{Account: p.Account, Region: p.Region, ID: id}
}

// update runs fn in a write transaction and fails the test if it fails.
func update(t *testing.T, s efs.Store, fn func(efs.Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatalf("update: %v", err)
	}
}

// read returns what fn reads in a read transaction and fails the test if
// that fails.
func read[T any](t *testing.T, s efs.Store, fn func(efs.Tx) (T, error)) T {
	t.Helper()
	v, err := tryRead(s, fn)
	if err != nil {
		t.Fatalf("view: %v", err)
	}
	return v
}

// tryRead returns what fn reads in a read transaction, and its error.
func tryRead[T any](s efs.Store, fn func(efs.Tx) (T, error)) (T, error) {
	var v T
	err := s.View(context.Background(), func(tx efs.Tx) error {
		var err error
		v, err = fn(tx)
		return err
	})
	return v, err
}

// insert stores records of any kind in one transaction.
func insert(t *testing.T, s efs.Store, recs ...any) {
	t.Helper()
	update(t, s, func(tx efs.Tx) error {
		for _, r := range recs {
			if err := insertRecord(tx, r); err != nil {
				return err
			}
		}
		return nil
	})
}

func insertRecord(tx efs.Tx, rec any) error {
	switch r := rec.(type) {
	case *efs.FileSystem:
		return tx.InsertFileSystem(r)
	case *efs.MountTarget:
		return tx.InsertMountTarget(r)
	case *efs.AccessPoint:
		return tx.InsertAccessPoint(r)
	case *efs.Replication:
		return tx.InsertReplication(r)
	}
	panic(fmt.Sprintf("storetest: cannot insert a %T", rec))
}

// replace updates one stored record of any kind.
func replace(t *testing.T, s efs.Store, rec any) {
	t.Helper()
	update(t, s, func(tx efs.Tx) error {
		switch r := rec.(type) {
		case *efs.FileSystem:
			return tx.UpdateFileSystem(r)
		case *efs.MountTarget:
			return tx.UpdateMountTarget(r)
		case *efs.AccessPoint:
			return tx.UpdateAccessPoint(r)
		case *efs.Replication:
			return tx.UpdateReplication(r)
		}
		panic(fmt.Sprintf("storetest: cannot update a %T", rec))
	})
}

// expectSame fails the test unless got equals want field by field.
func expectSame(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := diff(want, got); d != "" {
		t.Errorf("%s: %s", what, d)
	}
}
