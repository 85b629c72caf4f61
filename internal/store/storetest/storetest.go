// Package storetest is the conformance suite every efs.Store
// implementation must pass.
package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/efsd/efsd/internal/efs"
)

// Run runs the suite against stores made by open; each subtest gets a
// fresh, empty store.
func Run(t *testing.T, open func(t *testing.T) efs.Store) {
	t.Run("FileSystemCRUD", func(t *testing.T) { testFileSystemCRUD(t, open(t)) })
	t.Run("Pagination", func(t *testing.T) { testPagination(t, open(t)) })
	t.Run("Due", func(t *testing.T) { testDue(t, open(t)) })
	t.Run("AccountPreference", func(t *testing.T) { testAccountPreference(t, open(t)) })
	t.Run("Rollback", func(t *testing.T) { testRollback(t, open(t)) })
	t.Run("Replications", func(t *testing.T) { testReplications(t, open(t)) })
}

func testReplications(t *testing.T, s efs.Store) {
	ctx := context.Background()
	a := efs.FSKey{Account: "111111111111", Region: "us-east-1", ID: "fs-aaaaaaaa"}
	b := efs.FSKey{Account: "111111111111", Region: "eu-west-1", ID: "fs-bbbbbbbb"}
	c := efs.FSKey{Account: "222222222222", Region: "us-east-1", ID: "fs-cccccccc"}
	r1 := &efs.Replication{ID: "rep-1", Source: a, Dest: b, Status: efs.RepEnabling, CreatedAt: time.Unix(1700000000, 0).UTC()}
	r2 := &efs.Replication{ID: "rep-2", Source: c, Dest: efs.FSKey{Account: "111111111111", Region: "us-east-1", ID: "fs-dddddddd"}, Status: efs.RepEnabled}
	if err := s.Update(ctx, func(tx efs.Tx) error {
		if err := tx.InsertReplication(r1); err != nil {
			return err
		}
		return tx.InsertReplication(r2)
	}); err != nil {
		t.Fatal(err)
	}
	err := s.Update(ctx, func(tx efs.Tx) error {
		return tx.InsertReplication(&efs.Replication{ID: "rep-3", Source: a, Dest: c})
	})
	if !errors.Is(err, efs.ErrConflict) {
		t.Fatalf("second configuration with the same source: %v, want ErrConflict", err)
	}
	ids := func(reps []*efs.Replication) (out []string) {
		for _, r := range reps {
			out = append(out, r.ID)
		}
		return out
	}
	s.View(ctx, func(tx efs.Tx) error {
		got, _ := tx.ReplicationsByFSID("fs-bbbbbbbb")
		if len(got) != 1 || got[0].ID != "rep-1" || got[0].Source != a || !got[0].CreatedAt.Equal(r1.CreatedAt) {
			t.Errorf("by destination id: %+v", got)
		}
		vis, _ := tx.VisibleReplications("111111111111", "us-east-1", 0, 10)
		if len(vis) != 2 {
			t.Errorf("visible in 1111/us-east-1: %v", ids(vis))
		}
		vis, _ = tx.VisibleReplications("111111111111", "us-east-1", vis[0].Seq, 10)
		if len(vis) != 1 || vis[0].ID != "rep-2" {
			t.Errorf("second page: %v", ids(vis))
		}
		vis, _ = tx.VisibleReplications("222222222222", "eu-west-1", 0, 10)
		if len(vis) != 0 {
			t.Errorf("visible in 2222/eu-west-1: %v", ids(vis))
		}
		return nil
	})
	r1.SourceDeleted = true
	r1.Status = efs.RepError
	if err := s.Update(ctx, func(tx efs.Tx) error { return tx.UpdateReplication(r1) }); err != nil {
		t.Fatal(err)
	}
	s.View(ctx, func(tx efs.Tx) error {
		if vis, _ := tx.VisibleReplications("111111111111", "us-east-1", 0, 10); len(vis) != 1 || vis[0].ID != "rep-2" {
			t.Errorf("hidden source side still visible: %v", ids(vis))
		}
		if vis, _ := tx.VisibleReplications("111111111111", "eu-west-1", 0, 10); len(vis) != 1 || vis[0].Status != efs.RepError {
			t.Errorf("destination side: %+v", vis)
		}
		return nil
	})
	if err := s.Update(ctx, func(tx efs.Tx) error { return tx.DeleteReplication("rep-1") }); err != nil {
		t.Fatal(err)
	}
	s.View(ctx, func(tx efs.Tx) error {
		if _, err := tx.Replication("rep-1"); !errors.Is(err, efs.ErrNotFound) {
			t.Errorf("deleted replication: %v", err)
		}
		all, _ := tx.AllReplications()
		if len(all) != 1 {
			t.Errorf("all: %v", ids(all))
		}
		return nil
	})
}

func newFS(account, region, id, token string) *efs.FileSystem {
	return &efs.FileSystem{ID: id, Account: account, Region: region, CreationToken: token,
		CreatedAt: time.Unix(1700000000, 0).UTC(), State: efs.StateAvailable,
		Tags: []efs.Tag{{Key: "Name", Value: id}}}
}

func insert(t *testing.T, s efs.Store, fss ...*efs.FileSystem) {
	t.Helper()
	err := s.Update(context.Background(), func(tx efs.Tx) error {
		for _, fs := range fss {
			if err := tx.InsertFileSystem(fs); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testFileSystemCRUD(t *testing.T, s efs.Store) {
	ctx := context.Background()
	a := newFS("111111111111", "us-east-1", "fs-aaaaaaaa", "tok")
	insert(t, s, a)
	if a.Seq == 0 {
		t.Fatal("insert did not assign Seq")
	}
	// Same ID or token in another account or region does not collide.
	insert(t, s, newFS("222222222222", "us-east-1", "fs-aaaaaaaa", "tok"), newFS("111111111111", "eu-west-1", "fs-aaaaaaaa", "tok"))

	err := s.Update(ctx, func(tx efs.Tx) error {
		return tx.InsertFileSystem(newFS("111111111111", "us-east-1", "fs-bbbbbbbb", "tok"))
	})
	if !errors.Is(err, efs.ErrConflict) {
		t.Fatalf("duplicate token: got %v, want ErrConflict", err)
	}
	err = s.View(ctx, func(tx efs.Tx) error {
		got, err := tx.FileSystem("111111111111", "us-east-1", "fs-aaaaaaaa")
		if err != nil {
			return err
		}
		if got.CreationToken != "tok" || len(got.Tags) != 1 || !got.CreatedAt.Equal(a.CreatedAt) || got.Seq != a.Seq {
			t.Errorf("round trip: got %+v", got)
		}
		if _, err := tx.FileSystemByToken("111111111111", "us-east-1", "tok"); err != nil {
			t.Errorf("by token: %v", err)
		}
		if _, err := tx.FileSystem("333333333333", "us-east-1", "fs-aaaaaaaa"); !errors.Is(err, efs.ErrNotFound) {
			t.Errorf("other account: got %v, want ErrNotFound", err)
		}
		n, err := tx.CountFileSystems("111111111111", "us-east-1")
		if n != 1 || err != nil {
			t.Errorf("count = %d, %v", n, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	a.State = efs.StateDeleting
	if err := s.Update(ctx, func(tx efs.Tx) error { return tx.UpdateFileSystem(a) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx efs.Tx) error { return tx.DeleteFileSystem(a.Account, a.Region, a.ID) }); err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(tx efs.Tx) error { return tx.DeleteFileSystem(a.Account, a.Region, a.ID) })
	if !errors.Is(err, efs.ErrNotFound) {
		t.Fatalf("second delete: got %v, want ErrNotFound", err)
	}
}

func testPagination(t *testing.T, s efs.Store) {
	ctx := context.Background()
	for i := range 5 {
		insert(t, s, newFS("111111111111", "us-east-1", "fs-0000000"+string(rune('a'+i)), "t"+string(rune('a'+i))))
	}
	var first []*efs.FileSystem
	s.View(ctx, func(tx efs.Tx) error {
		var err error
		first, err = tx.FileSystems("111111111111", "us-east-1", 0, 2)
		return err
	})
	if len(first) != 2 || first[0].ID != "fs-0000000a" || first[1].ID != "fs-0000000b" {
		t.Fatalf("first page: %v", first)
	}
	// Delete one already listed and add one: the next page continues after b.
	s.Update(ctx, func(tx efs.Tx) error { return tx.DeleteFileSystem("111111111111", "us-east-1", "fs-0000000a") })
	insert(t, s, newFS("111111111111", "us-east-1", "fs-0000000z", "tz"))
	var rest []*efs.FileSystem
	s.View(ctx, func(tx efs.Tx) error {
		var err error
		rest, err = tx.FileSystems("111111111111", "us-east-1", first[1].Seq, 100)
		return err
	})
	var ids []string
	for _, fs := range rest {
		ids = append(ids, fs.ID)
	}
	want := []string{"fs-0000000c", "fs-0000000d", "fs-0000000e", "fs-0000000z"}
	if len(ids) != len(want) {
		t.Fatalf("rest = %v, want %v", ids, want)
	}
	for i := range want {
		if ids[i] != want[i] {
			t.Fatalf("rest = %v, want %v", ids, want)
		}
	}
}

func testDue(t *testing.T, s efs.Store) {
	ctx := context.Background()
	now := time.Now()
	a, b, c := newFS("1", "r", "fs-a", "a"), newFS("2", "r", "fs-b", "b"), newFS("1", "r", "fs-c", "c")
	a.DueAt, b.DueAt = now.Add(time.Second), now
	insert(t, s, a, b, c)
	var due []*efs.FileSystem
	later := now.Add(2 * time.Second)
	s.View(ctx, func(tx efs.Tx) error { var err error; due, err = tx.DueFileSystems(later, 10); return err })
	if len(due) != 2 || due[0].ID != "fs-b" || due[1].ID != "fs-a" {
		t.Fatalf("due = %v", due)
	}
	s.View(ctx, func(tx efs.Tx) error { var err error; due, err = tx.DueFileSystems(now, 10); return err })
	if len(due) != 1 || due[0].ID != "fs-b" {
		t.Fatalf("due now = %v", due)
	}
	s.View(ctx, func(tx efs.Tx) error {
		next, ok, err := tx.NextDue(now)
		if err != nil || !ok || !next.Equal(a.DueAt) {
			t.Errorf("NextDue = %v %v %v, want %v", next, ok, err, a.DueAt)
		}
		if _, ok, _ := tx.NextDue(later); ok {
			t.Error("NextDue after the last due time found one")
		}
		return nil
	})
	b.DueAt = time.Time{}
	s.Update(ctx, func(tx efs.Tx) error { return tx.UpdateFileSystem(b) })
	s.View(ctx, func(tx efs.Tx) error { var err error; due, err = tx.DueFileSystems(later, 10); return err })
	if len(due) != 1 || due[0].ID != "fs-a" {
		t.Fatalf("due after clearing = %v", due)
	}
}

func testAccountPreference(t *testing.T, s efs.Store) {
	ctx := context.Background()
	var got string
	s.View(ctx, func(tx efs.Tx) error { var err error; got, err = tx.AccountPreference("1", "r"); return err })
	if got != "" {
		t.Fatalf("unset preference = %q", got)
	}
	for _, v := range []string{efs.ShortID, efs.LongID} {
		if err := s.Update(ctx, func(tx efs.Tx) error { return tx.PutAccountPreference("1", "r", v) }); err != nil {
			t.Fatal(err)
		}
		s.View(ctx, func(tx efs.Tx) error { var err error; got, err = tx.AccountPreference("1", "r"); return err })
		if got != v {
			t.Fatalf("preference = %q, want %q", got, v)
		}
	}
}

func testRollback(t *testing.T, s efs.Store) {
	ctx := context.Background()
	boom := errors.New("boom")
	err := s.Update(ctx, func(tx efs.Tx) error {
		if err := tx.InsertFileSystem(newFS("1", "r", "fs-x", "x")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	s.View(ctx, func(tx efs.Tx) error {
		if _, err := tx.FileSystem("1", "r", "fs-x"); !errors.Is(err, efs.ErrNotFound) {
			t.Errorf("rolled-back insert visible: %v", err)
		}
		return nil
	})
}
