package replication

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"time"

	"github.com/efsd/efsd/internal/efs"
	"github.com/efsd/efsd/internal/remotesync"
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
	pairs := []string{src + "/", "source:/", src, "source:/"}
	if dst != "" {
		pairs = append(pairs, dst+"/", "destination:/", dst, "destination:/")
	}
	detail := strings.NewReplacer(pairs...).Replace(err.Error())
	var re *rootError
	var ue *unreachableError
	var remote *remotesync.RemoteError
	switch {
	case errors.As(err, &ue):
		return efs.RepPaused, fmt.Sprintf("Destination deployment '%s' unreachable since %s; replication resumes when it is back (%v).",
			ue.peer, ue.since.UTC().Format(time.RFC3339), ue.err)
	case errors.As(err, &remote) && remote.Code == remotesync.CodeGone:
		return efs.RepError, "The destination deployment no longer has this replication configuration (it was deleted there, e.g. with LOCAL_CONFIGURATION_ONLY); nothing more is written to the destination. Delete the configuration here too."
	case errors.As(err, &remote) && remote.Code == remotesync.CodeNoSpace:
		return efs.RepPaused, fmt.Sprintf("The destination file system is out of space; replication resumes when space is freed (%s).", remote.Message)
	case errors.As(err, &remote) && remote.Code == codeNotReady:
		return efs.RepPaused, fmt.Sprintf("The destination is not ready yet (%s).", remote.Message)
	case errors.As(err, &remote):
		return efs.RepPaused, fmt.Sprintf("Replication is paused by an error at the destination deployment and will be retried (%s: %s).", remote.Code, remote.Message)
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
