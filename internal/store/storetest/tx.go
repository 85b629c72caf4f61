package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/efsd/efsd/internal/efs"
)

// state is everything a store holds in the suite's scopes, as the Tx
// methods read it back.
type state struct {
	FileSystems  [][]*efs.FileSystem // per scope, in the order of scopes
	AccessPoints [][]*efs.AccessPoint
	Networks     []*efs.Network // nil where there is none
	Preferences  []string
	MountTargets []*efs.MountTarget
	Replications []*efs.Replication
}

func snapshot(tx efs.Tx) (*state, error) {
	st := &state{}
	for _, p := range scopes {
		fss, err := tx.FileSystems(p.Account, p.Region, 0, 1000)
		if err != nil {
			return nil, err
		}
		aps, err := tx.AccessPoints(p.Account, p.Region, "", 0, 1000)
		if err != nil {
			return nil, err
		}
		n, err := tx.Network(p.Account, p.Region)
		if errors.Is(err, efs.ErrNotFound) {
			n, err = nil, nil
		}
		if err != nil {
			return nil, err
		}
		pref, err := tx.AccountPreference(p.Account, p.Region)
		if err != nil {
			return nil, err
		}
		st.FileSystems, st.AccessPoints = append(st.FileSystems, fss), append(st.AccessPoints, aps)
		st.Networks, st.Preferences = append(st.Networks, n), append(st.Preferences, pref)
	}
	var err error
	if st.MountTargets, err = tx.AllMountTargets(); err != nil {
		return nil, err
	}
	st.Replications, err = tx.AllReplications()
	return st, err
}

func snap(t *testing.T, s efs.Store) *state {
	t.Helper()
	return read(t, s, snapshot)
}

// with returns a changed copy of a record.
func with[T any](rec *T, change func(*T)) *T {
	c := *rec
	change(&c)
	return &c
}

// expectConflict checks that inserting rec fails with ErrConflict and
// stores nothing, and that the transaction that saw it still commits.
func expectConflict(t *testing.T, s efs.Store, what string, rec any) {
	t.Helper()
	before := snap(t, s)
	update(t, s, func(tx efs.Tx) error {
		if err := insertRecord(tx, rec); !errors.Is(err, efs.ErrConflict) {
			t.Errorf("%s: insert returned %v, want ErrConflict", what, err)
		}
		return nil
	})
	expectSame(t, what+": store after the refused insert", before, snap(t, s))
}

// testIsolation: a record is found only in its own account and region and
// under its own keys. Elsewhere lookups, updates and deletes return
// ErrNotFound, lists are empty, and nothing changes.
func testIsolation(t *testing.T, s efs.Store) {
	insert(t, s, newFS(pA, "fs-1"), newMT(pA, "fsmt-1", "fs-1", "127.0.16.4"), newAP(pA, "fsap-1", "fs-1"),
		newRep("fsrep-1", key(pA, "fs-1"), key(pA, "fs-2")))
	update(t, s, func(tx efs.Tx) error {
		if err := tx.PutNetwork(pA.Account, pA.Region, newNetwork(1)); err != nil {
			return err
		}
		return tx.PutAccountPreference(pA.Account, pA.Region, efs.ShortID)
	})
	before := snap(t, s)
	expectNotFoundElsewhere(t, s)
	expectEmptyElsewhere(t, s)
	expectSame(t, "store after reads and writes aimed elsewhere", before, snap(t, s))
}

// expectNotFoundElsewhere looks up, updates and deletes the records
// testIsolation stored, in other scopes and under other IDs.
func expectNotFoundElsewhere(t *testing.T, s efs.Store) {
	t.Helper()
	// Each op names a record of pA's by the suffix "1" of its ID.
	scoped := []struct {
		name string
		op   func(tx efs.Tx, p efs.Principal, n string) error
	}{
		{"FileSystem", func(tx efs.Tx, p efs.Principal, n string) error {
			_, err := tx.FileSystem(p.Account, p.Region, "fs-"+n)
			return err
		}},
		{"FileSystemByToken", func(tx efs.Tx, p efs.Principal, n string) error {
			_, err := tx.FileSystemByToken(p.Account, p.Region, "tok-fs-"+n)
			return err
		}},
		{"UpdateFileSystem", func(tx efs.Tx, p efs.Principal, n string) error {
			return tx.UpdateFileSystem(newFS(p, "fs-"+n))
		}},
		{"DeleteFileSystem", func(tx efs.Tx, p efs.Principal, n string) error {
			return tx.DeleteFileSystem(p.Account, p.Region, "fs-"+n)
		}},
		{"MountTarget", func(tx efs.Tx, p efs.Principal, n string) error {
			_, err := tx.MountTarget(p.Account, p.Region, "fsmt-"+n)
			return err
		}},
		{"UpdateMountTarget", func(tx efs.Tx, p efs.Principal, n string) error {
			return tx.UpdateMountTarget(newMT(p, "fsmt-"+n, "fs-1", "127.0.16.4"))
		}},
		{"DeleteMountTarget", func(tx efs.Tx, p efs.Principal, n string) error {
			return tx.DeleteMountTarget(p.Account, p.Region, "fsmt-"+n)
		}},
		{"AccessPoint", func(tx efs.Tx, p efs.Principal, n string) error {
			_, err := tx.AccessPoint(p.Account, p.Region, "fsap-"+n)
			return err
		}},
		{"AccessPointByToken", func(tx efs.Tx, p efs.Principal, n string) error {
			_, err := tx.AccessPointByToken(p.Account, p.Region, "tok-fsap-"+n)
			return err
		}},
		{"UpdateAccessPoint", func(tx efs.Tx, p efs.Principal, n string) error {
			return tx.UpdateAccessPoint(newAP(p, "fsap-"+n, "fs-1"))
		}},
		{"DeleteAccessPoint", func(tx efs.Tx, p efs.Principal, n string) error {
			return tx.DeleteAccessPoint(p.Account, p.Region, "fsap-"+n)
		}},
	}
	elsewhere := []struct {
		name string
		p    efs.Principal
		n    string
	}{{"in another account", pB, "1"}, {"in another region", pA2, "1"}, {"under another ID", pA, "2"}}
	for _, w := range elsewhere {
		for _, op := range scoped {
			expectNotFound(t, op.name+" "+w.name, s.Update(t.Context(), func(tx efs.Tx) error { return op.op(tx, w.p, w.n) }))
		}
	}
	unscoped := map[string]func(tx efs.Tx) error{
		"Network in another account": func(tx efs.Tx) error { _, err := tx.Network(pB.Account, pB.Region); return err },
		"Network in another region":  func(tx efs.Tx) error { _, err := tx.Network(pA2.Account, pA2.Region); return err },
		"Replication":                func(tx efs.Tx) error { _, err := tx.Replication("fsrep-2"); return err },
		"UpdateReplication": func(tx efs.Tx) error {
			return tx.UpdateReplication(newRep("fsrep-2", key(pA, "fs-1"), key(pA, "fs-2")))
		},
		"DeleteReplication": func(tx efs.Tx) error { return tx.DeleteReplication("fsrep-2") },
		"MountTargetByIP":   func(tx efs.Tx) error { _, err := tx.MountTargetByIP("127.0.16.5"); return err },
	}
	for name, op := range unscoped {
		expectNotFound(t, name, s.Update(t.Context(), op))
	}
}

// expectEmptyElsewhere lists in other scopes and of another file system
// than testIsolation's records; DeleteAccessPointsOfFS there deletes
// nothing.
func expectEmptyElsewhere(t *testing.T, s efs.Store) {
	t.Helper()
	lists := map[string]func(tx efs.Tx, p efs.Principal, fsID string) (any, error){
		"MountTargetsOfFS": func(tx efs.Tx, p efs.Principal, fsID string) (any, error) {
			return tx.MountTargetsOfFS(p.Account, p.Region, fsID)
		},
		"MountTargetsPage": func(tx efs.Tx, p efs.Principal, fsID string) (any, error) {
			return tx.MountTargetsPage(p.Account, p.Region, fsID, 0, 10)
		},
		"AccessPoints of the file system": func(tx efs.Tx, p efs.Principal, fsID string) (any, error) {
			return tx.AccessPoints(p.Account, p.Region, fsID, 0, 10)
		},
		"CountAccessPoints": func(tx efs.Tx, p efs.Principal, fsID string) (any, error) {
			return tx.CountAccessPoints(p.Account, p.Region, fsID)
		},
		"DeleteAccessPointsOfFS": func(tx efs.Tx, p efs.Principal, fsID string) (any, error) {
			return nil, tx.DeleteAccessPointsOfFS(p.Account, p.Region, fsID)
		},
	}
	scopeLists := map[string]func(tx efs.Tx, p efs.Principal, fsID string) (any, error){
		"FileSystems": func(tx efs.Tx, p efs.Principal, _ string) (any, error) {
			return tx.FileSystems(p.Account, p.Region, 0, 10)
		},
		"CountFileSystems": func(tx efs.Tx, p efs.Principal, _ string) (any, error) {
			return tx.CountFileSystems(p.Account, p.Region)
		},
		"AccessPoints": func(tx efs.Tx, p efs.Principal, _ string) (any, error) {
			return tx.AccessPoints(p.Account, p.Region, "", 0, 10)
		},
		"VisibleReplications": func(tx efs.Tx, p efs.Principal, _ string) (any, error) {
			return tx.VisibleReplications(p.Account, p.Region, 0, 10)
		},
		"AccountPreference": func(tx efs.Tx, p efs.Principal, _ string) (any, error) {
			return tx.AccountPreference(p.Account, p.Region)
		},
	}
	for _, w := range []struct {
		name     string
		p        efs.Principal
		fsID     string
		oneScope bool // lists of a whole account and region would not be empty
	}{
		{name: "in another account", p: pB, fsID: "fs-1"},
		{name: "in another region", p: pA2, fsID: "fs-1"},
		{name: "in another account and region", p: pB2, fsID: "fs-1"},
		{name: "of another file system", p: pA, fsID: "fs-2", oneScope: true},
	} {
		all := []map[string]func(efs.Tx, efs.Principal, string) (any, error){lists}
		if !w.oneScope {
			all = append(all, scopeLists)
		}
		for _, m := range all {
			for name, list := range m {
				err := s.Update(t.Context(), func(tx efs.Tx) error {
					v, err := list(tx, w.p, w.fsID)
					if err == nil && v != nil && !isEmpty(v) {
						t.Errorf("%s %s = %+v, want nothing", name, w.name, v)
					}
					return err
				})
				if err != nil {
					t.Errorf("%s %s: %v", name, w.name, err)
				}
			}
		}
	}
	for _, id := range []string{"fs-3", "fs-x"} {
		if got := read(t, s, func(tx efs.Tx) ([]*efs.Replication, error) { return tx.ReplicationsByFSID(id) }); len(got) != 0 {
			t.Errorf("ReplicationsByFSID(%q) = %q", id, ids(got))
		}
	}
}

// isEmpty reports whether v is an empty list, a zero count or "".
func isEmpty(v any) bool {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice {
		return rv.Len() == 0
	}
	return rv.IsZero()
}

// testRollback: every write of an Update whose function fails is undone.
func testRollback(t *testing.T, s efs.Store) {
	fs1, mt, ap1 := newFS(pA, "fs-1"), newMT(pA, "fsmt-1", "fs-1", "127.0.16.4"), newAP(pA, "fsap-1", "fs-1")
	rep := newRep("fsrep-1", key(pA, "fs-1"), key(pB, "fs-3"))
	insert(t, s, fs1, newFS(pA, "fs-2"), mt, ap1, newAP(pA, "fsap-2", "fs-1"), rep)
	update(t, s, func(tx efs.Tx) error {
		if err := tx.PutNetwork(pA.Account, pA.Region, newNetwork(1)); err != nil {
			return err
		}
		return tx.PutAccountPreference(pA.Account, pA.Region, efs.LongID)
	})
	writes := []struct {
		name string
		fn   func(efs.Tx) error
	}{
		{"InsertFileSystem", func(tx efs.Tx) error { return tx.InsertFileSystem(newFS(pB, "fs-9")) }},
		{"UpdateFileSystem", func(tx efs.Tx) error {
			return tx.UpdateFileSystem(with(fs1, func(f *efs.FileSystem) { f.State, f.DueAt = efs.StateDeleting, t0 }))
		}},
		{"DeleteFileSystem", func(tx efs.Tx) error { return tx.DeleteFileSystem(pA.Account, pA.Region, "fs-2") }},
		{"PutAccountPreference", func(tx efs.Tx) error { return tx.PutAccountPreference(pA.Account, pA.Region, efs.ShortID) }},
		{"PutAccountPreference (new)", func(tx efs.Tx) error { return tx.PutAccountPreference(pB.Account, pB.Region, efs.ShortID) }},
		{"InsertReplication", func(tx efs.Tx) error {
			return tx.InsertReplication(newRep("fsrep-2", key(pA, "fs-2"), key(pB2, "fs-4")))
		}},
		{"UpdateReplication", func(tx efs.Tx) error {
			return tx.UpdateReplication(with(rep, func(r *efs.Replication) { r.Status, r.SourceDeleted = efs.RepPaused, true }))
		}},
		{"DeleteReplication", func(tx efs.Tx) error { return tx.DeleteReplication("fsrep-1") }},
		{"PutNetwork", func(tx efs.Tx) error { return tx.PutNetwork(pA.Account, pA.Region, newNetwork(2)) }},
		{"PutNetwork (new)", func(tx efs.Tx) error { return tx.PutNetwork(pB.Account, pB.Region, newNetwork(2)) }},
		{"InsertMountTarget", func(tx efs.Tx) error { return tx.InsertMountTarget(newMT(pA, "fsmt-2", "fs-2", "127.0.16.5")) }},
		{"UpdateMountTarget", func(tx efs.Tx) error {
			return tx.UpdateMountTarget(with(mt, func(m *efs.MountTarget) { m.State = efs.StateDeleting }))
		}},
		{"DeleteMountTarget", func(tx efs.Tx) error { return tx.DeleteMountTarget(pA.Account, pA.Region, "fsmt-1") }},
		{"InsertAccessPoint", func(tx efs.Tx) error { return tx.InsertAccessPoint(newAP(pA, "fsap-3", "fs-2")) }},
		{"UpdateAccessPoint", func(tx efs.Tx) error {
			return tx.UpdateAccessPoint(with(ap1, func(a *efs.AccessPoint) { a.RootPath = "/elsewhere" }))
		}},
		{"DeleteAccessPoint", func(tx efs.Tx) error { return tx.DeleteAccessPoint(pA.Account, pA.Region, "fsap-2") }},
		{"DeleteAccessPointsOfFS", func(tx efs.Tx) error { return tx.DeleteAccessPointsOfFS(pA.Account, pA.Region, "fs-1") }},
		{"several writes", func(tx efs.Tx) error {
			return errors.Join(tx.InsertFileSystem(newFS(pA2, "fs-5")), tx.DeleteMountTarget(pA.Account, pA.Region, "fsmt-1"),
				tx.PutNetwork(pA.Account, pA.Region, newNetwork(3)))
		}},
	}
	refused := errors.New("refused")
	for _, w := range writes {
		before := snap(t, s)
		err := s.Update(t.Context(), func(tx efs.Tx) error {
			if err := w.fn(tx); err != nil {
				return fmt.Errorf("%s: %w", w.name, err)
			}
			inside, err := snapshot(tx)
			if err != nil {
				return err
			}
			if diff(before, inside) == "" {
				t.Errorf("%s changed nothing that its own transaction sees", w.name)
			}
			return refused
		})
		if !errors.Is(err, refused) {
			t.Errorf("%s: Update returned %v, want the function's error", w.name, err)
		}
		expectSame(t, w.name+" rolled back", before, snap(t, s))
	}
}

// testRetryAfterConflict: the domain retries an insert with a fresh ID in
// the same transaction when the first collides, so a refused insert must
// leave the transaction usable.
func testRetryAfterConflict(t *testing.T, s efs.Store) {
	fs, mt, ap := newFS(pA, "fs-1"), newMT(pA, "fsmt-1", "fs-1", "127.0.16.4"), newAP(pA, "fsap-1", "fs-1")
	rep := newRep("fsrep-1", key(pA, "fs-1"), key(pB, "fs-2"))
	insert(t, s, fs, mt, ap, rep)
	freshFS, freshMT := newFS(pA, "fs-3"), newMT(pA, "fsmt-2", "fs-1", "127.0.16.5")
	freshAP, freshRep := newAP(pA, "fsap-2", "fs-1"), newRep("fsrep-2", key(pA, "fs-5"), key(pB, "fs-6"))
	for _, tc := range []struct{ name, collide, fresh any }{
		{"file system", with(fs, func(f *efs.FileSystem) { f.CreationToken = freshFS.CreationToken }), freshFS},
		{"mount target", with(mt, func(m *efs.MountTarget) { m.IP = freshMT.IP }), freshMT},
		{"access point", with(ap, func(a *efs.AccessPoint) { a.ClientToken = freshAP.ClientToken }), freshAP},
		{"replication", with(rep, func(r *efs.Replication) { r.Source, r.Dest = freshRep.Source, freshRep.Dest }), freshRep},
	} {
		update(t, s, func(tx efs.Tx) error {
			if err := insertRecord(tx, tc.collide); !errors.Is(err, efs.ErrConflict) {
				return fmt.Errorf("%s with a taken ID: %v, want ErrConflict", tc.name, err)
			}
			return insertRecord(tx, tc.fresh)
		})
	}
	st := snap(t, s)
	expectSame(t, "file systems", []*efs.FileSystem{fs, freshFS}, st.FileSystems[0])
	expectSame(t, "mount targets", []*efs.MountTarget{mt, freshMT}, st.MountTargets)
	expectSame(t, "access points", []*efs.AccessPoint{ap, freshAP}, st.AccessPoints[0])
	expectSame(t, "replications", []*efs.Replication{rep, freshRep}, st.Replications)
}

// testViewIsReadOnly: View runs fn in a read-only transaction.
func testViewIsReadOnly(t *testing.T, s efs.Store) {
	err := s.View(context.Background(), func(tx efs.Tx) error { return tx.InsertFileSystem(newFS(pA, "fs-1")) })
	if err == nil {
		t.Error("InsertFileSystem in View succeeded")
	}
	if n := countFS(t, s, pA); n != 0 {
		t.Errorf("a write in View stored %d file systems", n)
	}
}
