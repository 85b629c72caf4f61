package storetest

import (
	"testing"

	"github.com/efsd/efsd/internal/efs"
)

func apPages(p efs.Principal, fsID string) func(efs.Tx, int64, int) ([]*efs.AccessPoint, error) {
	return func(tx efs.Tx, after int64, limit int) ([]*efs.AccessPoint, error) {
		return tx.AccessPoints(p.Account, p.Region, fsID, after, limit)
	}
}

func apByToken(s efs.Store, p efs.Principal, token string) (*efs.AccessPoint, error) {
	return tryRead(s, func(tx efs.Tx) (*efs.AccessPoint, error) { return tx.AccessPointByToken(p.Account, p.Region, token) })
}

func countAPs(t *testing.T, s efs.Store, p efs.Principal, fsID string) int {
	t.Helper()
	return read(t, s, func(tx efs.Tx) (int, error) { return tx.CountAccessPoints(p.Account, p.Region, fsID) })
}

func testAccessPointRoundTrip(t *testing.T, s efs.Store) {
	ap := newAP(pA, "fsap-1", "fs-1")
	requireComplete(t, ap, "Seq")
	insert(t, s, ap)
	if ap.Seq <= 0 {
		t.Fatalf("InsertAccessPoint set Seq %d, want > 0", ap.Seq)
	}
	expect := func(what string, want *efs.AccessPoint) {
		t.Helper()
		expectSame(t, what+": AccessPoint", want, read(t, s, func(tx efs.Tx) (*efs.AccessPoint, error) {
			return tx.AccessPoint(pA.Account, pA.Region, want.ID)
		}))
		byToken, err := apByToken(s, pA, want.ClientToken)
		if err != nil {
			t.Fatalf("%s: AccessPointByToken: %v", what, err)
		}
		expectSame(t, what+": AccessPointByToken", want, byToken)
		for _, fsID := range []string{"", want.FileSystemID} {
			expectSame(t, what+": AccessPoints("+fsID+")", []*efs.AccessPoint{want},
				read(t, s, func(tx efs.Tx) ([]*efs.AccessPoint, error) { return apPages(pA, fsID)(tx, 0, 10) }))
		}
	}
	expect("inserted", ap)

	u := with(ap, func(a *efs.AccessPoint) {
		a.Tags, a.PosixUser, a.CreationInfo = nil, nil, nil
		a.RootPath, a.State = "/", efs.StateDeleting
	})
	replace(t, s, u)
	expect("updated", u)

	update(t, s, func(tx efs.Tx) error { return tx.DeleteAccessPoint(pA.Account, pA.Region, ap.ID) })
	_, err := tryRead(s, func(tx efs.Tx) (*efs.AccessPoint, error) { return tx.AccessPoint(pA.Account, pA.Region, ap.ID) })
	expectNotFound(t, "AccessPoint after delete", err)
	_, err = apByToken(s, pA, ap.ClientToken)
	expectNotFound(t, "AccessPointByToken after delete", err)
	if n := countAPs(t, s, pA, ap.FileSystemID); n != 0 {
		t.Errorf("CountAccessPoints after delete = %d", n)
	}
	expectNotFound(t, "second DeleteAccessPoint", s.Update(t.Context(), func(tx efs.Tx) error {
		return tx.DeleteAccessPoint(pA.Account, pA.Region, ap.ID)
	}))
	expectNotFound(t, "UpdateAccessPoint after delete", s.Update(t.Context(), func(tx efs.Tx) error {
		return tx.UpdateAccessPoint(u)
	}))

	again := newAP(pA, ap.ID, ap.FileSystemID) // ID and token are free again
	insert(t, s, again)
	if again.Seq <= ap.Seq {
		t.Errorf("Seq after delete and insert = %d, want > %d", again.Seq, ap.Seq)
	}
}

// ID and client token are unique within an account and region, whatever
// the file system.
func testAccessPointConflicts(t *testing.T, s efs.Store) {
	insert(t, s, newAP(pA, "fsap-1", "fs-1"))
	expectConflict(t, s, "access point with a taken ID",
		with(newAP(pA, "fsap-1", "fs-2"), func(a *efs.AccessPoint) { a.ClientToken = "tok-other" }))
	for _, fsID := range []string{"fs-1", "fs-2"} {
		expectConflict(t, s, "access point of "+fsID+" with a taken client token",
			with(newAP(pA, "fsap-2", fsID), func(a *efs.AccessPoint) { a.ClientToken = "tok-fsap-1" }))
	}
	insert(t, s, newAP(pB, "fsap-1", "fs-1"), newAP(pA2, "fsap-1", "fs-1")) // same ID and token elsewhere
}

func seedAPs(t *testing.T, s efs.Store) {
	t.Helper()
	seedPerFS(t, s, func(p efs.Principal, id, fsID string) any { return newAP(p, id, fsID) })
}

// AccessPoints pages an account's access points in a region in creation
// order, only one file system's when fsID is set.
func testAccessPointLists(t *testing.T, s efs.Store) {
	seedAPs(t, s)
	expectPages(t, s, "AccessPoints(pA, fs-1)", apPages(pA, "fs-1"), "a0", "a1", "a2")
	expectPages(t, s, "AccessPoints(pA)", apPages(pA, ""), "a0", "b0", "a1", "b1", "a2", "b2")
	expectPages(t, s, "AccessPoints(pB)", apPages(pB, ""), "c0", "c1", "c2")
	expectPages(t, s, "AccessPoints(pA2, fs-1)", apPages(pA2, "fs-1"), "d0", "d1", "d2")
	expectPages(t, s, "AccessPoints(pB2)", apPages(pB2, ""))
	for _, tc := range []struct {
		p    efs.Principal
		fsID string
		want int
	}{{pA, "fs-1", 3}, {pA, "fs-2", 3}, {pA, "fs-3", 0}, {pB, "fs-1", 3}, {pB, "fs-2", 0}, {pA2, "fs-1", 3}, {pB2, "fs-1", 0}} {
		if n := countAPs(t, s, tc.p, tc.fsID); n != tc.want {
			t.Errorf("CountAccessPoints(%v, %s) = %d, want %d", tc.p, tc.fsID, n, tc.want)
		}
	}
}

// DeleteAccessPointsOfFS deletes one file system's access points, and is
// no error when it has none.
func testDeleteAccessPointsOfFS(t *testing.T, s efs.Store) {
	seedAPs(t, s)
	update(t, s, func(tx efs.Tx) error { return tx.DeleteAccessPointsOfFS(pA.Account, pA.Region, "fs-1") })
	expectPages(t, s, "AccessPoints(pA)", apPages(pA, ""), "b0", "b1", "b2")
	expectPages(t, s, "AccessPoints(pB)", apPages(pB, ""), "c0", "c1", "c2")
	expectPages(t, s, "AccessPoints(pA2)", apPages(pA2, ""), "d0", "d1", "d2")
	if n := countAPs(t, s, pA, "fs-1"); n != 0 {
		t.Errorf("CountAccessPoints after DeleteAccessPointsOfFS = %d", n)
	}
	_, err := apByToken(s, pA, "tok-a0")
	expectNotFound(t, "AccessPointByToken after DeleteAccessPointsOfFS", err)
	update(t, s, func(tx efs.Tx) error { return tx.DeleteAccessPointsOfFS(pA.Account, pA.Region, "fs-1") })
	update(t, s, func(tx efs.Tx) error { return tx.DeleteAccessPointsOfFS(pB2.Account, pB2.Region, "fs-9") })
	insert(t, s, newAP(pA, "a0", "fs-1")) // its ID and token are free again
}
