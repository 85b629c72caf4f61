package replication

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"

	"github.com/efsd/efsd/internal/efs"
)

// rootError is a failure to reach a file system's root directory.
type rootError struct {
	side string
	err  error
}

func (e *rootError) Error() string { return e.side + " root: " + e.err.Error() }
func (e *rootError) Unwrap() error { return e.err }

// classify turns a failed pass into the status EFS would show and a
// message saying what is wrong. A side whose data is gone is ERROR (EFS's
// "failed, unrecoverable" state); problems an operator can fix (no space,
// destination not writable) are PAUSED. Either way the worker retries and
// returns to ENABLED once a pass succeeds. Host paths are replaced by
// source:/ and destination:/ so messages show only file system paths.
func classify(err error, src, dst string) (status, msg string) {
	detail := strings.NewReplacer(src+"/", "source:/", dst+"/", "destination:/", src, "source:/", dst, "destination:/").Replace(err.Error())
	var re *rootError
	switch {
	case errors.As(err, &re) && errors.Is(err, fs.ErrNotExist):
		return efs.RepError, fmt.Sprintf("The %s file system's data is missing (%s).", re.side, detail)
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return efs.RepPaused, fmt.Sprintf("The destination file system is out of space; replication resumes when space is freed (%s).", detail)
	case errors.Is(err, syscall.EROFS), errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		return efs.RepPaused, fmt.Sprintf("A file system is not accessible for replication; replication resumes when access is restored (%s).", detail)
	case errors.As(err, &re):
		return efs.RepError, fmt.Sprintf("The %s file system's data cannot be read (%s).", re.side, detail)
	}
	return efs.RepPaused, fmt.Sprintf("Replication is paused by an error and will be retried (%s).", detail)
}
