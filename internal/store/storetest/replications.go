package storetest

import (
	"testing"
	"time"

	"github.com/efsd/efsd/internal/efs"
)

func byFSID(t *testing.T, s efs.Store, id string) []*efs.Replication {
	t.Helper()
	return read(t, s, func(tx efs.Tx) ([]*efs.Replication, error) { return tx.ReplicationsByFSID(id) })
}

func allReps(t *testing.T, s efs.Store) []*efs.Replication {
	t.Helper()
	return read(t, s, func(tx efs.Tx) ([]*efs.Replication, error) { return tx.AllReplications() })
}

func visible(p efs.Principal) func(efs.Tx, int64, int) ([]*efs.Replication, error) {
	return func(tx efs.Tx, after int64, limit int) ([]*efs.Replication, error) {
		return tx.VisibleReplications(p.Account, p.Region, after, limit)
	}
}

func deleteRep(t *testing.T, s efs.Store, id string) {
	t.Helper()
	update(t, s, func(tx efs.Tx) error { return tx.DeleteReplication(id) })
}

func testReplicationRoundTrip(t *testing.T, s efs.Store) {
	r := newRep("fsrep-1", key(pA, "fs-1"), key(pB2, "fs-2"))
	r.SourceDeleted, r.DestDeleted, r.DueAt = true, true, t0.Add(time.Hour)
	requireComplete(t, r, "Seq")
	insert(t, s, r)
	if r.Seq <= 0 {
		t.Fatalf("InsertReplication set Seq %d, want > 0", r.Seq)
	}
	expect := func(what string, want *efs.Replication) {
		t.Helper()
		expectSame(t, what+": Replication", want, read(t, s, func(tx efs.Tx) (*efs.Replication, error) { return tx.Replication(want.ID) }))
		expectSame(t, what+": ReplicationsByFSID(source)", []*efs.Replication{want}, byFSID(t, s, want.Source.ID))
		expectSame(t, what+": ReplicationsByFSID(destination)", []*efs.Replication{want}, byFSID(t, s, want.Dest.ID))
		expectSame(t, what+": AllReplications", []*efs.Replication{want}, allReps(t, s))
	}
	expect("inserted", r)

	u := with(r, func(u *efs.Replication) {
		u.Status, u.StatusMessage, u.LastReplicatedAt = efs.RepPaused, "", t0.Add(2*time.Hour)
		u.SourceDeleted, u.DueAt, u.RoleARN, u.NewDest = false, time.Time{}, "", false
	})
	replace(t, s, u)
	expect("updated", u)

	deleteRep(t, s, r.ID)
	_, err := tryRead(s, func(tx efs.Tx) (*efs.Replication, error) { return tx.Replication(r.ID) })
	expectNotFound(t, "Replication after delete", err)
	expectIDs(t, "ReplicationsByFSID after delete", byFSID(t, s, r.Source.ID))
	expectIDs(t, "AllReplications after delete", allReps(t, s))
	expectNotFound(t, "second DeleteReplication", s.Update(t.Context(), func(tx efs.Tx) error { return tx.DeleteReplication(r.ID) }))
	expectNotFound(t, "UpdateReplication after delete", s.Update(t.Context(), func(tx efs.Tx) error { return tx.UpdateReplication(u) }))

	again := newRep(r.ID, r.Source, r.Dest) // ID, source and destination are free again
	insert(t, s, again)
	if again.Seq <= r.Seq {
		t.Errorf("Seq after delete and insert = %d, want > %d", again.Seq, r.Seq)
	}
}

// A configuration's ID is unique, and a file system is the source of at
// most one configuration and the destination of at most one.
func testReplicationConflicts(t *testing.T, s efs.Store) {
	insert(t, s, newRep("fsrep-1", key(pA, "fs-1"), key(pB, "fs-2")))
	expectConflict(t, s, "replication with a taken ID", newRep("fsrep-1", key(pA, "fs-3"), key(pB, "fs-4")))
	expectConflict(t, s, "replication with a taken source", newRep("fsrep-2", key(pA, "fs-1"), key(pB, "fs-5")))
	expectConflict(t, s, "replication with a taken destination", newRep("fsrep-3", key(pA, "fs-6"), key(pB, "fs-2")))
	// The same IDs in other accounts and regions are other file systems.
	insert(t, s, newRep("fsrep-4", key(pA2, "fs-1"), key(pB2, "fs-2")), newRep("fsrep-5", key(pB, "fs-1"), key(pA, "fs-2")))
}

// ReplicationsByFSID finds configurations by the bare ID of either side,
// in any account or region, hidden sides included, in creation order.
func testReplicationsByFSID(t *testing.T, s efs.Store) {
	r1 := newRep("fsrep-1", key(pA, "fs-same"), key(pA2, "fs-x"))
	r2 := newRep("fsrep-2", key(pB, "fs-y"), key(pB2, "fs-same"))
	r3 := newRep("fsrep-3", key(pA, "fs-z"), key(pB, "fs-w"))
	insert(t, s, r1, r2, r3)
	expectSame(t, "ReplicationsByFSID(fs-same)", []*efs.Replication{r1, r2}, byFSID(t, s, "fs-same"))
	expectIDs(t, "ReplicationsByFSID(fs-x)", byFSID(t, s, "fs-x"), "fsrep-1")
	expectIDs(t, "ReplicationsByFSID(fs-w)", byFSID(t, s, "fs-w"), "fsrep-3")
	expectIDs(t, "ReplicationsByFSID(fs-none)", byFSID(t, s, "fs-none"))
	r1.SourceDeleted, r2.DestDeleted = true, true
	replace(t, s, r1)
	replace(t, s, r2)
	expectIDs(t, "ReplicationsByFSID of hidden sides", byFSID(t, s, "fs-same"), "fsrep-1", "fsrep-2")
	expectSame(t, "AllReplications", []*efs.Replication{r1, r2, r3}, allReps(t, s))
}

// VisibleReplications pages, in creation order, the configurations with a
// side in the principal's account and region that is not hidden there.
func testVisibleReplications(t *testing.T, s efs.Store) {
	r1 := newRep("fsrep-1", key(pA, "fs-1"), key(pA2, "fs-2")) // across regions
	r2 := newRep("fsrep-2", key(pB, "fs-3"), key(pA, "fs-4"))  // across accounts, destination in pA
	r3 := newRep("fsrep-3", key(pA, "fs-5"), key(pA, "fs-6"))  // both sides in pA: listed once
	r4 := newRep("fsrep-4", key(pB, "fs-7"), key(pB2, "fs-8"))
	insert(t, s, r1, r2, r3, r4)
	expectSame(t, "VisibleReplications(pA)", []*efs.Replication{r1, r2, r3},
		read(t, s, func(tx efs.Tx) ([]*efs.Replication, error) { return visible(pA)(tx, 0, 10) }))
	expectVisible := func(what string, want map[efs.Principal][]string) {
		t.Helper()
		for _, p := range scopes {
			expectPages(t, s, what+": VisibleReplications of "+p.Account+"/"+p.Region, visible(p), want[p]...)
		}
	}
	expectVisible("inserted", map[efs.Principal][]string{
		pA: {"fsrep-1", "fsrep-2", "fsrep-3"}, pA2: {"fsrep-1"}, pB: {"fsrep-2", "fsrep-4"}, pB2: {"fsrep-4"}})

	r1.SourceDeleted = true // hidden on its source's side only
	r3.SourceDeleted = true // still visible through its destination
	replace(t, s, r1)
	replace(t, s, r3)
	expectVisible("one side hidden", map[efs.Principal][]string{
		pA: {"fsrep-2", "fsrep-3"}, pA2: {"fsrep-1"}, pB: {"fsrep-2", "fsrep-4"}, pB2: {"fsrep-4"}})

	r2.DestDeleted, r3.DestDeleted, r4.SourceDeleted, r4.DestDeleted = true, true, true, true
	for _, r := range []*efs.Replication{r2, r3, r4} {
		replace(t, s, r)
	}
	expectVisible("more hidden", map[efs.Principal][]string{pA2: {"fsrep-1"}, pB: {"fsrep-2"}})
}
