package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/efsd/efsd/internal/efs"
	"github.com/efsd/efsd/internal/fsview"
)

func TestMemHandles(t *testing.T) {
	RunHandles(t, func(*testing.T) (fsview.HandleStore, func() fsview.HandleStore) { return fsview.NewMemHandles(), nil })
}

// The comparison the suite relies on must see a change in any field.
func TestDiff(t *testing.T) {
	fs := newFS(pA, "fs-1")
	if d := diff(fs, with(fs, func(f *efs.FileSystem) { f.CreatedAt = f.CreatedAt.In(time.FixedZone("X", 3600)) })); d != "" {
		t.Errorf("same instant in another zone: %s", d)
	}
	if d := diff(fs, with(fs, func(f *efs.FileSystem) { f.Tags = nil; f.LifecyclePolicies = []efs.LifecyclePolicy{} })); d == "" {
		t.Error("dropped tags not seen")
	}
	if d := diff(newAP(pA, "a", "fs"), with(newAP(pA, "a", "fs"), func(a *efs.AccessPoint) {
		a.PosixUser = &efs.PosixUser{UID: 1000, GID: 1001, SecondaryGIDs: []uint32{4}}
	})); d == "" {
		t.Error("changed secondary GIDs not seen")
	}
	for name, change := range map[string]func(*efs.FileSystem){
		"Size":  func(f *efs.FileSystem) { f.Size.Bytes = 1 },
		"DueAt": func(f *efs.FileSystem) { f.DueAt = t0 },
		"Seq":   func(f *efs.FileSystem) { f.Seq = 9 },
		"Tag":   func(f *efs.FileSystem) { f.Tags = []efs.Tag{f.Tags[0], {Key: "team", Value: "x"}} },
	} {
		if diff(fs, with(fs, change)) == "" {
			t.Errorf("change of %s not seen", name)
		}
	}
	if d := diff([]*efs.FileSystem{}, []*efs.FileSystem(nil)); d != "" {
		t.Errorf("empty and nil list differ: %s", d)
	}
	if got := unsetFields("", reflect.ValueOf(newRep("r", key(pA, "a"), key(pB, "b"))), []string{"Seq"}); len(got) != 3 {
		t.Errorf("unset fields of a new replication = %v, want SourceDeleted, DestDeleted, DueAt", got)
	}
}
