package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/efsd/efsd/internal/efs"
)

func getFS(s efs.Store, p efs.Principal, id string) (*efs.FileSystem, error) {
	return tryRead(s, func(tx efs.Tx) (*efs.FileSystem, error) { return tx.FileSystem(p.Account, p.Region, id) })
}

func listFS(p efs.Principal) func(efs.Tx, int64, int) ([]*efs.FileSystem, error) {
	return func(tx efs.Tx, after int64, limit int) ([]*efs.FileSystem, error) {
		return tx.FileSystems(p.Account, p.Region, after, limit)
	}
}

func countFS(t *testing.T, s efs.Store, p efs.Principal) int {
	t.Helper()
	return read(t, s, func(tx efs.Tx) (int, error) { return tx.CountFileSystems(p.Account, p.Region) })
}

func deleteFS(t *testing.T, s efs.Store, p efs.Principal, id string) {
	t.Helper()
	update(t, s, func(tx efs.Tx) error { return tx.DeleteFileSystem(p.Account, p.Region, id) })
}

// expectNotFound fails the test unless err is ErrNotFound.
func expectNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, efs.ErrNotFound) {
		t.Errorf("%s: %v, want ErrNotFound", what, err)
	}
}

// A file system reads back whole by ID, by token and in lists; an update
// replaces everything but its keys and Seq; a delete frees its keys.
func testFileSystemRoundTrip(t *testing.T, s efs.Store) {
	fs := newFS(pA, "fs-1")
	fs.DueAt = t0.Add(time.Minute)
	requireComplete(t, fs, "Seq", "Size") // Size is measured, not stored
	insert(t, s, fs)
	if fs.Seq <= 0 {
		t.Fatalf("InsertFileSystem set Seq %d, want > 0", fs.Seq)
	}
	expect := func(what string, want *efs.FileSystem) {
		t.Helper()
		got, err := getFS(s, pA, want.ID)
		if err != nil {
			t.Fatalf("%s: FileSystem: %v", what, err)
		}
		expectSame(t, what+": FileSystem", want, got)
		byToken := read(t, s, func(tx efs.Tx) (*efs.FileSystem, error) {
			return tx.FileSystemByToken(pA.Account, pA.Region, want.CreationToken)
		})
		expectSame(t, what+": FileSystemByToken", want, byToken)
		expectSame(t, what+": FileSystems", []*efs.FileSystem{want}, read(t, s, func(tx efs.Tx) ([]*efs.FileSystem, error) {
			return listFS(pA)(tx, 0, 10)
		}))
	}
	expect("inserted", fs)

	u := *fs
	u.State, u.ThroughputMode, u.ProvisionedThroughput, u.Encrypted = efs.StateUpdating, "elastic", 0, false
	u.Protection, u.BackupStatus, u.Policy = efs.ProtectionReplicating, efs.BackupDisabling, ""
	u.Tags, u.LifecyclePolicies, u.MountTargets = []efs.Tag{{Key: "k", Value: "v"}}, nil, 0
	u.ThroughputChangedAt, u.DueAt = t0.Add(time.Hour), time.Time{}
	replace(t, s, &u)
	expect("updated", &u)

	// Deleting a file system deletes nothing else.
	insert(t, s, newMT(pA, "fsmt-1", fs.ID, "127.0.16.4"), newAP(pA, "fsap-1", fs.ID),
		newRep("fsrep-1", key(pA, fs.ID), key(pB, "fs-2")))
	before := snap(t, s)
	deleteFS(t, s, pA, fs.ID)
	after := snap(t, s)
	after.FileSystems[0] = before.FileSystems[0]
	expectSame(t, "store after DeleteFileSystem, but for the file system", before, after)
	_, err := getFS(s, pA, fs.ID)
	expectNotFound(t, "FileSystem after delete", err)
	_, err = tryRead(s, func(tx efs.Tx) (*efs.FileSystem, error) {
		return tx.FileSystemByToken(pA.Account, pA.Region, fs.CreationToken)
	})
	expectNotFound(t, "FileSystemByToken after delete", err)
	if n := countFS(t, s, pA); n != 0 {
		t.Errorf("CountFileSystems after delete = %d", n)
	}
	expectNotFound(t, "second DeleteFileSystem", s.Update(t.Context(), func(tx efs.Tx) error {
		return tx.DeleteFileSystem(pA.Account, pA.Region, fs.ID)
	}))
	expectNotFound(t, "UpdateFileSystem after delete", s.Update(t.Context(), func(tx efs.Tx) error {
		return tx.UpdateFileSystem(&u)
	}))

	// The ID and token are free again, and Seq is not reused.
	again := newFS(pA, fs.ID)
	insert(t, s, again)
	if again.Seq <= fs.Seq {
		t.Errorf("Seq after delete and insert = %d, want > %d", again.Seq, fs.Seq)
	}
}

// ID and creation token are unique within an account and region.
func testFileSystemConflicts(t *testing.T, s efs.Store) {
	insert(t, s, newFS(pA, "fs-1"))
	sameID := newFS(pA, "fs-1")
	sameID.CreationToken = "tok-other"
	expectConflict(t, s, "file system with a taken ID", sameID)
	sameToken := newFS(pA, "fs-2")
	sameToken.CreationToken = "tok-fs-1"
	expectConflict(t, s, "file system with a taken creation token", sameToken)
	insert(t, s, newFS(pB, "fs-1"), newFS(pA2, "fs-1")) // same ID and token elsewhere
}

// FileSystems pages an account's file systems in a region in creation
// order; a marker stays valid when its file system is deleted.
func testFileSystemPaging(t *testing.T, s efs.Store) {
	var want []string
	for i := range 5 { // interleaved with other scopes, so that pA's Seqs have gaps
		id := fmt.Sprintf("fs-%d", i)
		insert(t, s, newFS(pA, id), newFS(pB, id), newFS(pA2, id+"x"))
		want = append(want, id)
	}
	expectPages(t, s, "FileSystems of pA", listFS(pA), want...)
	expectPages(t, s, "FileSystems of pA2", listFS(pA2), "fs-0x", "fs-1x", "fs-2x", "fs-3x", "fs-4x")
	expectPages(t, s, "FileSystems of pB2", listFS(pB2))
	for p, n := range map[efs.Principal]int{pA: 5, pA2: 5, pB: 5, pB2: 0} {
		if got := countFS(t, s, p); got != n {
			t.Errorf("CountFileSystems(%v) = %d, want %d", p, got, n)
		}
	}

	first := read(t, s, func(tx efs.Tx) ([]*efs.FileSystem, error) { return listFS(pA)(tx, 0, 2) })
	deleteFS(t, s, pA, "fs-0")
	deleteFS(t, s, pA, "fs-1") // the marker's own file system
	last := newFS(pA, "fs-9")
	insert(t, s, last)
	rest := read(t, s, func(tx efs.Tx) ([]*efs.FileSystem, error) { return listFS(pA)(tx, first[1].Seq, 100) })
	expectIDs(t, "FileSystems after a deleted marker", rest, "fs-2", "fs-3", "fs-4", "fs-9")

	deleteFS(t, s, pA, "fs-9")
	next := newFS(pA, "fs-10")
	insert(t, s, next)
	if next.Seq <= last.Seq {
		t.Errorf("Seq after deleting the newest = %d, want > %d: a marker would skip it", next.Seq, last.Seq)
	}
}

// DueFileSystems and NextDue look at every account and region.
func testDue(t *testing.T, s efs.Store) {
	now := t0
	withDue := func(p efs.Principal, id string, due time.Time) *efs.FileSystem {
		fs := newFS(p, id)
		fs.DueAt = due
		return fs
	}
	a := withDue(pA, "fs-a", now.Add(time.Second))
	b := withDue(pB, "fs-b", now) // due exactly now
	c := withDue(pA, "fs-c", time.Time{})
	d := withDue(pA2, "fs-d", now.Add(-time.Hour))
	insert(t, s, a, b, c, d)
	due := func(now time.Time, limit int) []*efs.FileSystem {
		t.Helper()
		return read(t, s, func(tx efs.Tx) ([]*efs.FileSystem, error) { return tx.DueFileSystems(now, limit) })
	}
	later := now.Add(2 * time.Second)
	expectSame(t, "DueFileSystems", []*efs.FileSystem{d, b, a}, due(later, 10))
	expectIDs(t, "DueFileSystems(now)", due(now, 10), "fs-d", "fs-b")
	expectIDs(t, "DueFileSystems with limit 2", due(later, 2), "fs-d", "fs-b")
	expectIDs(t, "DueFileSystems before the first", due(now.Add(-2*time.Hour), 10))

	for _, tc := range []struct {
		after time.Time
		want  time.Time // zero: none
	}{
		{now.Add(-2 * time.Hour), d.DueAt},
		{d.DueAt, b.DueAt}, // strictly after
		{now, a.DueAt},
		{a.DueAt, time.Time{}},
	} {
		next, ok, err := tryNextDue(s, tc.after)
		if err != nil || ok != !tc.want.IsZero() || !next.Equal(tc.want) {
			t.Errorf("NextDue(%v) = %v, %v, %v; want %v", tc.after, next, ok, err, tc.want)
		}
	}

	b.DueAt = time.Time{}             // settled
	a.DueAt = later.Add(time.Hour)    // postponed
	c.DueAt = now.Add(-2 * time.Hour) // scheduled
	for _, fs := range []*efs.FileSystem{a, b, c} {
		replace(t, s, fs)
	}
	deleteFS(t, s, pA2, "fs-d")
	expectIDs(t, "DueFileSystems after updates", due(later, 10), "fs-c")
	if next, ok, err := tryNextDue(s, later); err != nil || !ok || !next.Equal(a.DueAt) {
		t.Errorf("NextDue after updates = %v, %v, %v; want %v", next, ok, err, a.DueAt)
	}
}

func tryNextDue(s efs.Store, after time.Time) (next time.Time, ok bool, err error) {
	err = s.View(context.Background(), func(tx efs.Tx) error {
		next, ok, err = tx.NextDue(after)
		return err
	})
	return next, ok, err
}

func testAccountPreference(t *testing.T, s efs.Store) {
	pref := func(p efs.Principal) string {
		t.Helper()
		return read(t, s, func(tx efs.Tx) (string, error) { return tx.AccountPreference(p.Account, p.Region) })
	}
	put := func(p efs.Principal, v string) {
		t.Helper()
		update(t, s, func(tx efs.Tx) error { return tx.PutAccountPreference(p.Account, p.Region, v) })
	}
	for _, p := range scopes {
		if v := pref(p); v != "" {
			t.Errorf("preference never set in %v = %q", p, v)
		}
	}
	for _, v := range []string{efs.ShortID, efs.LongID} {
		put(pA, v)
		if got := pref(pA); got != v {
			t.Errorf("preference = %q, want %q", got, v)
		}
	}
	put(pB, efs.ShortID)
	for p, want := range map[efs.Principal]string{pA: efs.LongID, pA2: "", pB: efs.ShortID, pB2: ""} {
		if got := pref(p); got != want {
			t.Errorf("preference in %v = %q, want %q", p, got, want)
		}
	}
}
