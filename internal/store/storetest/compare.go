package storetest

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/efsd/efsd/internal/efs"
)

var timeType = reflect.TypeFor[time.Time]()

// diff describes the first difference between want and got, or returns
// "" when they are equal. It walks every field, so a field added to a
// record is compared without touching the suite. Times compare as
// instants (a store may hand one back in another Location) and a nil
// slice equals an empty one.
func diff(want, got any) string {
	return diffValue("", reflect.ValueOf(want), reflect.ValueOf(got))
}

func diffValue(path string, w, g reflect.Value) string {
	mismatch := func() string {
		return fmt.Sprintf("%s: want %v, got %v", cmp.Or(path, "value"), show(w), show(g))
	}
	if !w.IsValid() || !g.IsValid() {
		if w.IsValid() != g.IsValid() {
			return mismatch()
		}
		return ""
	}
	if w.Type() != g.Type() {
		return mismatch()
	}
	if w.Type() == timeType {
		if !w.Interface().(time.Time).Equal(g.Interface().(time.Time)) {
			return mismatch()
		}
		return ""
	}
	switch w.Kind() {
	case reflect.Pointer:
		if w.IsNil() || g.IsNil() {
			if w.IsNil() != g.IsNil() {
				return mismatch()
			}
			return ""
		}
		return diffValue(path, w.Elem(), g.Elem())
	case reflect.Struct:
		for i := range w.NumField() {
			if d := diffValue(path+"."+w.Type().Field(i).Name, w.Field(i), g.Field(i)); d != "" {
				return d
			}
		}
	case reflect.Slice, reflect.Array:
		if w.Len() != g.Len() {
			return fmt.Sprintf("%s: want %d elements %v, got %d %v", cmp.Or(path, "value"), w.Len(), show(w), g.Len(), show(g))
		}
		for i := range w.Len() {
			if d := diffValue(fmt.Sprintf("%s[%d]", path, i), w.Index(i), g.Index(i)); d != "" {
				return d
			}
		}
	case reflect.Map:
		if w.Len() != g.Len() {
			return mismatch()
		}
		for _, k := range w.MapKeys() {
			if d := diffValue(fmt.Sprintf("%s[%v]", path, k), w.MapIndex(k), g.MapIndex(k)); d != "" {
				return d
			}
		}
	default:
		if !w.Equal(g) {
			return mismatch()
		}
	}
	return ""
}

// show prints a value for a failure message; a list of records by their
// IDs.
func show(v reflect.Value) string {
	if !v.IsValid() {
		return "nothing"
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return "nil"
		}
		return show(v.Elem())
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			e := reflect.Indirect(v.Index(i))
			parts[i] = show(e)
			if e.Kind() == reflect.Struct && e.FieldByName("ID").IsValid() {
				parts[i] = e.FieldByName("ID").String()
			}
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return fmt.Sprintf("%+v", v)
}

// requireComplete fails the test when a record it is about to round-trip
// leaves a field at its zero value (fields named in skip aside): a field
// added to a record must be given a value here, or the round trip would
// not show that the store keeps it.
func requireComplete(t *testing.T, rec any, skip ...string) {
	t.Helper()
	if unset := unsetFields("", reflect.ValueOf(rec), skip); len(unset) > 0 {
		t.Fatalf("the suite's %T leaves %s unset: give every field a value", rec, strings.Join(unset, ", "))
	}
}

func unsetFields(path string, v reflect.Value, skip []string) []string {
	if v.Type() == timeType {
		if v.Interface().(time.Time).IsZero() {
			return []string{path}
		}
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return []string{path}
		}
		return unsetFields(path, v.Elem(), skip)
	case reflect.Struct:
		var out []string
		for i := range v.NumField() {
			name := v.Type().Field(i).Name
			if !slices.Contains(skip, name) {
				out = append(out, unsetFields(path+"."+name, v.Field(i), skip)...)
			}
		}
		return out
	case reflect.Slice, reflect.Map:
		if v.Len() == 0 {
			return []string{path}
		}
		if v.Kind() == reflect.Slice {
			return unsetFields(path+"[0]", v.Index(0), skip)
		}
		return nil
	}
	if v.IsZero() {
		return []string{path}
	}
	return nil
}

// idOf and seqOf read the ID and Seq fields every paged record has.
func idOf(rec any) string { return reflect.ValueOf(rec).Elem().FieldByName("ID").String() }
func seqOf(rec any) int64 { return reflect.ValueOf(rec).Elem().FieldByName("Seq").Int() }
func ids[T any](recs []T) []string {
	out := []string{}
	for _, r := range recs {
		out = append(out, idOf(r))
	}
	return out
}

// expectIDs fails the test unless recs have exactly the IDs want, in order.
func expectIDs[T any](t *testing.T, what string, recs []T, want ...string) {
	t.Helper()
	if got := ids(recs); !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

// expectPages pages through list with several page sizes; every walk must
// yield the records want (IDs, in order) with no page over its limit.
func expectPages[T any](t *testing.T, s efs.Store, what string, list func(tx efs.Tx, afterSeq int64, limit int) ([]T, error), want ...string) {
	t.Helper()
	for _, size := range []int{1, 2, 3, len(want), len(want) + 1} {
		if size < 1 {
			continue
		}
		got := []string{}
		var after int64
		for pages := 0; ; pages++ {
			if pages > len(want)+1 {
				t.Fatalf("%s with pages of %d does not end: %q so far", what, size, got)
			}
			page := read(t, s, func(tx efs.Tx) ([]T, error) { return list(tx, after, size) })
			if len(page) > size {
				t.Fatalf("%s: page of %d with limit %d", what, len(page), size)
			}
			got = append(got, ids(page)...)
			if len(page) < size {
				break
			}
			after = seqOf(page[len(page)-1])
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s with pages of %d = %q, want %q", what, size, got, want)
		}
	}
}
