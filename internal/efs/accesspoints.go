package efs

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"
)

// AccessPoint is an application's view of a file system: a root directory
// and, optionally, a POSIX identity forced on every operation.
type AccessPoint struct {
	ID           string
	Account      string
	Region       string
	FileSystemID string
	ClientToken  string
	Tags         []Tag
	PosixUser    *PosixUser `json:",omitempty"`
	RootPath     string
	CreationInfo *CreationInfo `json:",omitempty"`
	State        LifeCycleState
	CreatedAt    time.Time
	Seq          int64 `json:"-"`
}

// PosixUser is the identity an access point enforces.
type PosixUser struct {
	UID           uint32
	GID           uint32
	SecondaryGIDs []uint32 `json:",omitempty"`
}

// CreationInfo says how to create an access point's missing root
// directory.
type CreationInfo struct {
	OwnerUID    uint32
	OwnerGID    uint32
	Permissions string // octal, e.g. "0755"
}

// ARN is the access point's Amazon Resource Name.
func (ap *AccessPoint) ARN() string {
	return fmt.Sprintf("arn:aws:elasticfilesystem:%s:%s:access-point/%s", ap.Region, ap.Account, ap.ID)
}

// Name is the value of the access point's Name tag, if any.
func (ap *AccessPoint) Name() (string, bool) {
	for _, t := range ap.Tags {
		if t.Key == "Name" {
			return t.Value, true
		}
	}
	return "", false
}

// DefaultAccessPointQuota is EFS's access points per file system.
const DefaultAccessPointQuota = 10000

// CreateAccessPointInput carries CreateAccessPoint's parameters.
type CreateAccessPointInput struct {
	ClientToken  string
	FileSystemID string
	Tags         []Tag
	PosixUser    *PosixUser
	RootPath     string
	CreationInfo *CreationInfo
}

func apNotFound(id string) *Error {
	return E(AccessPointNotFound, "Access point '%s' does not exist.", id)
}

// loadAP resolves an ID or ARN to one of p's access points.
func loadAP(tx Tx, p Principal, idOrARN string) (*AccessPoint, error) {
	ref := ParseResourceID(idOrARN)
	if !ref.Belongs(p) {
		return nil, apNotFound(idOrARN)
	}
	ap, err := tx.AccessPoint(p.Account, p.Region, ref.ID)
	if errors.Is(err, ErrNotFound) {
		return nil, apNotFound(ref.ID)
	}
	return ap, err
}

// CreateAccessPoint creates an access point. Nothing needs provisioning
// (the root directory is made on first mount), so it is available at once.
func (s *Service) CreateAccessPoint(ctx context.Context, p Principal, in CreateAccessPointInput) (*AccessPoint, error) {
	root := in.RootPath
	if root == "" {
		root = "/"
	}
	if !strings.HasPrefix(root, "/") || path.Clean(root) != root {
		return nil, E(BadRequest, "RootDirectory Path '%s' must be an absolute, clean path.", root)
	}
	tags, err := mergeTags(nil, in.Tags)
	if err != nil {
		return nil, err
	}
	ap := &AccessPoint{
		ID:           s.newID("fsap-"),
		Account:      p.Account,
		Region:       p.Region,
		ClientToken:  in.ClientToken,
		Tags:         tags,
		PosixUser:    in.PosixUser,
		RootPath:     root,
		CreationInfo: in.CreationInfo,
		State:        StateAvailable,
		CreatedAt:    s.now(),
	}
	err = s.store.Update(ctx, func(tx Tx) error {
		if old, err := tx.AccessPointByToken(p.Account, p.Region, in.ClientToken); err == nil {
			return &Error{Code: AccessPointAlreadyExists, AccessPointID: old.ID,
				Message: fmt.Sprintf("Access point '%s' already exists with client token '%s'.", old.ID, in.ClientToken)}
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		fs, err := loadFS(tx, p, in.FileSystemID)
		if err != nil {
			return err
		}
		if err := requireAvailable(fs); err != nil {
			return err
		}
		n, err := tx.CountAccessPoints(p.Account, p.Region, fs.ID)
		if err != nil {
			return err
		}
		if n >= s.cfg.AccessPointQuota {
			return E(AccessPointLimitExceeded, "File system '%s' already has the maximum of %d access points.", fs.ID, s.cfg.AccessPointQuota)
		}
		ap.FileSystemID = fs.ID
		return tx.InsertAccessPoint(ap)
	})
	if err != nil {
		return nil, err
	}
	s.dataPlaneChanged()
	return ap, nil
}

// DeleteAccessPoint deletes an access point; clients mounted through it
// lose access.
func (s *Service) DeleteAccessPoint(ctx context.Context, p Principal, id string) error {
	err := s.store.Update(ctx, func(tx Tx) error {
		ap, err := loadAP(tx, p, id)
		if err != nil {
			return err
		}
		return tx.DeleteAccessPoint(p.Account, p.Region, ap.ID)
	})
	if err == nil {
		s.dataPlaneChanged()
	}
	return err
}

// AccessPointPage is one page of access points.
type AccessPointPage struct {
	AccessPoints []*AccessPoint
	Next         string
}

// DescribeAccessPoints describes one access point, a file system's, or
// all of p's.
func (s *Service) DescribeAccessPoints(ctx context.Context, p Principal, apID, fsID, token string, max int) (*AccessPointPage, error) {
	if apID != "" && fsID != "" {
		return nil, E(BadRequest, "Specify either AccessPointId or FileSystemId, not both.")
	}
	if max <= 0 {
		max = DefaultPageSize
	}
	after, err := decodeMarker(token)
	if err != nil {
		return nil, err
	}
	out := &AccessPointPage{AccessPoints: []*AccessPoint{}}
	err = s.store.View(ctx, func(tx Tx) error {
		if apID != "" {
			ap, err := loadAP(tx, p, apID)
			if err != nil {
				return err
			}
			out.AccessPoints = append(out.AccessPoints, ap)
			return nil
		}
		if fsID != "" {
			fs, err := loadFS(tx, p, fsID)
			if err != nil {
				return err
			}
			fsID = fs.ID
		}
		page, err := tx.AccessPoints(p.Account, p.Region, fsID, after, max+1)
		if err != nil {
			return err
		}
		out.AccessPoints, out.Next = trimPage(page, max, func(ap *AccessPoint) int64 { return ap.Seq })
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AccessPointsOf lists every access point of a file system, for the NFS
// server.
func (s *Service) AccessPointsOf(ctx context.Context, k FSKey) ([]*AccessPoint, error) {
	var out []*AccessPoint
	err := s.store.View(ctx, func(tx Tx) error {
		for after := int64(0); ; {
			page, err := tx.AccessPoints(k.Account, k.Region, k.ID, after, 1000)
			if err != nil {
				return err
			}
			out = append(out, page...)
			if len(page) < 1000 {
				return nil
			}
			after = page[len(page)-1].Seq
		}
	})
	return out, err
}
