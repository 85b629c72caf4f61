package efs

import (
	"errors"
	"fmt"
)

// Code is an AWS EFS error code. The wire layer maps each code to its
// modeled HTTP status; the domain never deals in HTTP.
type Code string

// Error codes that the EFS model declares and efsd returns.
const (
	BadRequest                        Code = "BadRequest"
	ValidationException               Code = "ValidationException"
	FileSystemNotFound                Code = "FileSystemNotFound"
	FileSystemAlreadyExists           Code = "FileSystemAlreadyExists"
	FileSystemLimitExceeded           Code = "FileSystemLimitExceeded"
	FileSystemInUse                   Code = "FileSystemInUse"
	IncorrectFileSystemLifeCycleState Code = "IncorrectFileSystemLifeCycleState"
	UnsupportedAvailabilityZone       Code = "UnsupportedAvailabilityZone"
	TooManyRequests                   Code = "TooManyRequests"
	ThroughputLimitExceeded           Code = "ThroughputLimitExceeded"
	PolicyNotFound                    Code = "PolicyNotFound"
	InvalidPolicyException            Code = "InvalidPolicyException"
	ReplicationNotFound               Code = "ReplicationNotFound"
	ReplicationAlreadyExists          Code = "ReplicationAlreadyExists"
	ConflictException                 Code = "ConflictException"
	AccessPointNotFound               Code = "AccessPointNotFound"
	AccessPointAlreadyExists          Code = "AccessPointAlreadyExists"
	AccessPointLimitExceeded          Code = "AccessPointLimitExceeded"
	MountTargetNotFound               Code = "MountTargetNotFound"
	MountTargetConflict               Code = "MountTargetConflict"
	IncorrectMountTargetState         Code = "IncorrectMountTargetState"
	SubnetNotFound                    Code = "SubnetNotFound"
	SecurityGroupNotFound             Code = "SecurityGroupNotFound"
	SecurityGroupLimitExceeded        Code = "SecurityGroupLimitExceeded"
	IpAddressInUse                    Code = "IpAddressInUse"
	NoFreeAddressesInSubnet           Code = "NoFreeAddressesInSubnet"
	AvailabilityZonesMismatch         Code = "AvailabilityZonesMismatch"
	InternalServerError               Code = "InternalServerError"
	DependencyTimeout                 Code = "DependencyTimeout"
)

// Error is a failure the API reports to the caller as an AWS error.
type Error struct {
	Code    Code
	Message string
	// FileSystemID is set for FileSystemAlreadyExists, whose error shape
	// carries the existing file system's ID.
	FileSystemID string
	// AccessPointID is set for AccessPointAlreadyExists.
	AccessPointID string
	Err           error // underlying cause, never shown to clients
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return string(e.Code) + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// E builds an *Error with a formatted message.
func E(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the AWS code of err, or InternalServerError when err is not
// an *Error.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return InternalServerError
}

// ErrNotFound is returned by a Store when a record does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned by a Store when a unique key is already taken.
var ErrConflict = errors.New("conflict")

func fsNotFound(id string) *Error {
	return E(FileSystemNotFound, "File system '%s' does not exist.", id)
}
