package storetest

import (
	"fmt"
	"testing"

	"github.com/efsd/efsd/internal/efs"
)

func mtsOfFS(t *testing.T, s efs.Store, p efs.Principal, fsID string) []*efs.MountTarget {
	t.Helper()
	return read(t, s, func(tx efs.Tx) ([]*efs.MountTarget, error) { return tx.MountTargetsOfFS(p.Account, p.Region, fsID) })
}

func mtPages(p efs.Principal, fsID string) func(efs.Tx, int64, int) ([]*efs.MountTarget, error) {
	return func(tx efs.Tx, after int64, limit int) ([]*efs.MountTarget, error) {
		return tx.MountTargetsPage(p.Account, p.Region, fsID, after, limit)
	}
}

func allMTs(t *testing.T, s efs.Store) []*efs.MountTarget {
	t.Helper()
	return read(t, s, func(tx efs.Tx) ([]*efs.MountTarget, error) { return tx.AllMountTargets() })
}

func mtByIP(s efs.Store, ip string) (*efs.MountTarget, error) {
	return tryRead(s, func(tx efs.Tx) (*efs.MountTarget, error) { return tx.MountTargetByIP(ip) })
}

func testMountTargetRoundTrip(t *testing.T, s efs.Store) {
	mt := newMT(pA, "fsmt-1", "fs-1", "127.0.16.4")
	requireComplete(t, mt, "Seq")
	insert(t, s, mt)
	if mt.Seq <= 0 {
		t.Fatalf("InsertMountTarget set Seq %d, want > 0", mt.Seq)
	}
	expect := func(what string, want *efs.MountTarget) {
		t.Helper()
		expectSame(t, what+": MountTarget", want, read(t, s, func(tx efs.Tx) (*efs.MountTarget, error) {
			return tx.MountTarget(pA.Account, pA.Region, want.ID)
		}))
		byIP, err := mtByIP(s, want.IP)
		if err != nil {
			t.Fatalf("%s: MountTargetByIP: %v", what, err)
		}
		expectSame(t, what+": MountTargetByIP", want, byIP)
		one := []*efs.MountTarget{want}
		expectSame(t, what+": MountTargetsOfFS", one, mtsOfFS(t, s, pA, want.FileSystemID))
		expectSame(t, what+": MountTargetsPage", one, read(t, s, func(tx efs.Tx) ([]*efs.MountTarget, error) {
			return mtPages(pA, want.FileSystemID)(tx, 0, 10)
		}))
		expectSame(t, what+": AllMountTargets", one, allMTs(t, s))
	}
	expect("inserted", mt)

	u := with(mt, func(m *efs.MountTarget) { m.State, m.SecurityGroups = efs.StateDeleting, []string{"sg-3"} })
	replace(t, s, u)
	expect("updated", u)

	update(t, s, func(tx efs.Tx) error { return tx.DeleteMountTarget(pA.Account, pA.Region, mt.ID) })
	_, err := tryRead(s, func(tx efs.Tx) (*efs.MountTarget, error) { return tx.MountTarget(pA.Account, pA.Region, mt.ID) })
	expectNotFound(t, "MountTarget after delete", err)
	_, err = mtByIP(s, mt.IP)
	expectNotFound(t, "MountTargetByIP after delete", err)
	expectIDs(t, "MountTargetsOfFS after delete", mtsOfFS(t, s, pA, mt.FileSystemID))
	expectIDs(t, "AllMountTargets after delete", allMTs(t, s))
	expectNotFound(t, "second DeleteMountTarget", s.Update(t.Context(), func(tx efs.Tx) error {
		return tx.DeleteMountTarget(pA.Account, pA.Region, mt.ID)
	}))
	expectNotFound(t, "UpdateMountTarget after delete", s.Update(t.Context(), func(tx efs.Tx) error {
		return tx.UpdateMountTarget(u)
	}))

	again := newMT(pB, "fsmt-2", "fs-9", mt.IP) // the address is free again, for any account
	insert(t, s, again)
	if again.Seq <= mt.Seq {
		t.Errorf("Seq after delete and insert = %d, want > %d", again.Seq, mt.Seq)
	}
	if got, err := mtByIP(s, mt.IP); err != nil || got.ID != again.ID {
		t.Errorf("MountTargetByIP after reuse = %v, %v; want %s", got, err, again.ID)
	}
}

// An IP address is unique over all accounts and regions; a mount target
// ID within an account and region.
func testMountTargetConflicts(t *testing.T, s efs.Store) {
	insert(t, s, newMT(pA, "fsmt-1", "fs-1", "127.0.16.4"))
	for i, p := range scopes {
		expectConflict(t, s, fmt.Sprintf("mount target in %v with a taken IP", p),
			newMT(p, fmt.Sprintf("fsmt-x%d", i), "fs-2", "127.0.16.4"))
	}
	expectConflict(t, s, "mount target with a taken ID", newMT(pA, "fsmt-1", "fs-1", "127.0.16.5"))
	insert(t, s, newMT(pB, "fsmt-1", "fs-1", "127.0.16.6"), newMT(pA2, "fsmt-1", "fs-1", "127.0.16.7"))
}

// seedPerFS inserts three rounds of records made by mk, each round one for
// pA's fs-1 (IDs a0, a1, a2), pA's fs-2 (b…), pB's fs-1 (c…) and pA2's
// fs-1 (d…), so that the Seqs of any one list have gaps.
func seedPerFS(t *testing.T, s efs.Store, mk func(p efs.Principal, id, fsID string) any) {
	t.Helper()
	for i := range 3 {
		insert(t, s,
			mk(pA, fmt.Sprint("a", i), "fs-1"), mk(pA, fmt.Sprint("b", i), "fs-2"),
			mk(pB, fmt.Sprint("c", i), "fs-1"), mk(pA2, fmt.Sprint("d", i), "fs-1"))
	}
}

// MountTargetsOfFS and MountTargetsPage list one file system's mount
// targets in creation order; AllMountTargets lists every one.
func testMountTargetLists(t *testing.T, s efs.Store) {
	n := 0
	seedPerFS(t, s, func(p efs.Principal, id, fsID string) any {
		n++
		return newMT(p, id, fsID, fmt.Sprintf("127.0.16.%d", n))
	})
	expectIDs(t, "MountTargetsOfFS(pA, fs-1)", mtsOfFS(t, s, pA, "fs-1"), "a0", "a1", "a2")
	expectIDs(t, "MountTargetsOfFS(pB, fs-1)", mtsOfFS(t, s, pB, "fs-1"), "c0", "c1", "c2")
	expectIDs(t, "MountTargetsOfFS(pA, fs-3)", mtsOfFS(t, s, pA, "fs-3"))
	expectPages(t, s, "MountTargetsPage(pA, fs-1)", mtPages(pA, "fs-1"), "a0", "a1", "a2")
	expectPages(t, s, "MountTargetsPage(pA, fs-2)", mtPages(pA, "fs-2"), "b0", "b1", "b2")
	expectPages(t, s, "MountTargetsPage(pA2, fs-1)", mtPages(pA2, "fs-1"), "d0", "d1", "d2")
	expectPages(t, s, "MountTargetsPage(pB2, fs-1)", mtPages(pB2, "fs-1"))
	expectIDs(t, "AllMountTargets", allMTs(t, s), "a0", "b0", "c0", "d0", "a1", "b1", "c1", "d1", "a2", "b2", "c2", "d2")
}
