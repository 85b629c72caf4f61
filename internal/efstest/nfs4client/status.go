package nfs4client

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/buildbarn/go-xdr/pkg/protocols/nfsv4"
)

// StatusError is an NFSv4 operation that failed: the first result of a
// COMPOUND whose status is not NFS4_OK. Op is 0 when the COMPOUND failed
// before any operation (NFS4ERR_MINOR_VERS_MISMATCH).
type StatusError struct {
	Op     nfsv4.NfsOpnum4
	Status nfsv4.Nfsstat4
}

func (e *StatusError) Error() string {
	op := "COMPOUND"
	if e.Op != 0 {
		op = OpName(e.Op)
	}
	return op + ": " + StatusName(e.Status)
}

// IsStatus reports whether err is (or wraps) a *StatusError with status.
func IsStatus(err error, status nfsv4.Nfsstat4) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status == status
}

// OpName names an operation ("OP_OPEN"), or gives its number.
func OpName(op nfsv4.NfsOpnum4) string {
	if n, ok := nfsv4.NfsOpnum4_name[op]; ok {
		return n
	}
	return fmt.Sprintf("op %d", op)
}

// StatusName names a status ("NFS4ERR_DENIED"), or gives its number.
func StatusName(st nfsv4.Nfsstat4) string {
	if n, ok := nfsv4.Nfsstat4_name[st]; ok {
		return n
	}
	return fmt.Sprintf("status %d", st)
}

var nfsstat4Type = reflect.TypeFor[nfsv4.Nfsstat4]()

// OpStatus is the status of one result. Every nfs_resop4 arm holds a
// result whose first field is its status (RFC 5661 section 16.2.3):
// either a struct with that field or a union whose arms answer
// Get…Status. The generated types name these differently per
// operation, so the status is found by reflection rather than a switch
// of some seventy cases that a new operation would silently miss.
func OpStatus(r nfsv4.NfsResop4) nfsv4.Nfsstat4 {
	v := reflect.ValueOf(r)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct || v.NumField() == 0 {
		return nfsv4.NFS4ERR_SERVERFAULT
	}
	res := v.Field(0)
	if res.Kind() == reflect.Interface {
		res = res.Elem() // a union: call its status getter
		if !res.IsValid() {
			return nfsv4.NFS4ERR_SERVERFAULT
		}
		for i := range res.NumMethod() {
			m := res.Method(i)
			t := m.Type()
			if t.NumIn() == 0 && t.NumOut() == 1 && t.Out(0) == nfsstat4Type {
				return m.Call(nil)[0].Interface().(nfsv4.Nfsstat4)
			}
		}
		return nfsv4.NFS4ERR_SERVERFAULT
	}
	if res.Kind() == reflect.Struct && res.NumField() > 0 && res.Field(0).Type() == nfsstat4Type {
		return res.Field(0).Interface().(nfsv4.Nfsstat4)
	}
	return nfsv4.NFS4ERR_SERVERFAULT
}

// firstFailure returns the *StatusError of the first failed result, or
// of the COMPOUND when it failed with no result.
func firstFailure(res *nfsv4.Compound4res) error {
	for _, r := range res.Resarray {
		if st := OpStatus(r); st != nfsv4.NFS4_OK {
			return &StatusError{Op: r.GetResop(), Status: st}
		}
	}
	if res.Status != nfsv4.NFS4_OK {
		return &StatusError{Status: res.Status}
	}
	return nil
}
