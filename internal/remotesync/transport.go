// Package remotesync makes a directory tree on another deployment
// identical to a local one: the source pushes, the receiver applies.
package remotesync

import (
	"context"
	"errors"
	"io"
	"syscall"
)

// Transport carries one request to the receiver and returns its reply.
// The peer package implements it over HTTP/2 with mutual TLS.
type Transport interface {
	RoundTrip(ctx context.Context, op string, body io.Reader) (io.ReadCloser, error)
}

// Error codes a receiver reports.
const (
	CodeGone     = "gone"
	CodeNoSpace  = "nospace"
	CodeReadOnly = "readonly"
	CodeBusy     = "busy"
	CodeProtocol = "protocol"
	CodeInternal = "internal"
)

// RemoteError is a failure the receiver reported.
type RemoteError struct{ Code, Message string }

func (e *RemoteError) Error() string { return e.Code + ": " + e.Message }

// ErrorCode maps a receiver's error to the code reported to the sender.
func ErrorCode(err error) string {
	var re *RemoteError
	if errors.As(err, &re) {
		return re.Code
	}
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return CodeNoSpace
	case errors.Is(err, syscall.EROFS):
		return CodeReadOnly
	}
	return CodeInternal
}
