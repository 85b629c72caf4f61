package efs

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sides of a configuration, as Replication.PeerSide names the one a peer
// deployment holds.
const (
	PeerSource      = "source"
	PeerDestination = "destination"
)

// Peer events: what one deployment tells the other about a configuration
// they share.
const (
	// PeerDeleteAll: the configuration was deleted with
	// ALL_CONFIGURATIONS on the sender's side; delete it here too.
	PeerDeleteAll = "delete-all"
	// PeerDeleteLocal: the sender deleted only its side
	// (LOCAL_CONFIGURATION_ONLY); replication has stopped.
	PeerDeleteLocal = "delete-local"
)

// Peers reaches the other deployments this one is configured with
// (internal/peer implements it over the network). A region served by a
// peer is not served here: its file systems live on the peer.
type Peers interface {
	// Route names the peer serving account's file systems in region.
	Route(account, region string) (peer string, ok bool)
	// CreateDestination asks the peer to create or claim the destination
	// of a configuration whose source is here. An *Error from the peer
	// comes back as such; a peer that cannot be reached is another error.
	CreateDestination(ctx context.Context, peer string, req *RemoteCreate) (*RemoteDestination, error)
	// Tell delivers an event about configuration id; nil once the peer has
	// acted on it (a configuration it does not know counts as done).
	Tell(ctx context.Context, peer, id, event string) error
	// Query asks the peer holding the source of configuration id whether
	// it recorded the configuration: PeerRecorded, PeerPending or
	// PeerUnknown (the peer's PeerQuery).
	Query(ctx context.Context, peer, id string) (string, error)
}

// What the source's deployment answers about a configuration whose
// destination a peer created or claimed for it (PeerQuery). Creating such
// a configuration is a commit at the source's deployment after the
// destination's deployment acted: the destination's side is in doubt
// until the source's deployment recorded it, and a configuration the
// source's deployment neither recorded nor is still creating never will be
// (presumed abort).
const (
	// PeerRecorded: this deployment has a record of the configuration
	// (in whatever state); the peer keeps its side.
	PeerRecorded = "recorded"
	// PeerPending: the CreateReplicationConfiguration call that made it is
	// still waiting here; ask again later.
	PeerPending = "pending"
	// PeerUnknown: not recorded here, and no call will record it (its
	// answer was lost, its caller gave up, or this deployment restarted
	// meanwhile): the peer removes what it made for it.
	PeerUnknown = "unknown"
)

// RemoteCreate is what a destination deployment needs to create or claim
// the destination of a configuration whose source is elsewhere.
type RemoteCreate struct {
	ID                string
	Source            FSKey
	OriginalSourceARN string
	CreatedAt         time.Time
	RoleARN           string `json:",omitempty"`
	// What a new destination takes from its source.
	SourceEncrypted bool
	PerformanceMode string
	Name            string `json:",omitempty"`
	// DestAccount and Dest (Region resolved, FileSystemID a bare ID or "")
	// are what the caller asked for.
	DestAccount string
	Dest        DestinationInput
}

// RemoteDestination is the destination deployment's answer: where the
// destination is and whether it can be written yet.
type RemoteDestination struct {
	Dest  FSKey
	State LifeCycleState // the destination file system's life cycle state
}

// ErrPeerUnreachable wraps failures to reach a peer deployment at all (as
// opposed to the peer's refusals).
var ErrPeerUnreachable = errors.New("peer deployment unreachable")

// peerFor names the peer deployment serving account's file systems in
// region, if any.
func (s *Service) peerFor(account, region string) (string, bool) {
	if s.cfg.Peers == nil || s.cfg.Regions.Has(region) {
		return "", false
	}
	return s.cfg.Peers.Route(account, region)
}

// createRemote creates a configuration whose destination lives on a peer
// deployment: the peer creates or claims the destination first (its rules
// and errors), then this side records the configuration, which is the
// commit. While the peer's answer is awaited the configuration ID is in
// s.creating, so that the peer, asking (PeerQuery), hears it is pending;
// once this call has returned without recording it, the peer hears it is
// unknown and removes what it made for it, or hands it to a retry of the
// same creation (AcceptReplication). So an answer lost on the way back, a
// caller that gave up, or a crash here never leaves the peer a
// configuration nobody replicates into.
func (s *Service) createRemote(ctx context.Context, p Principal, sourceID, peer, destAccount string, d DestinationInput) (*Replication, error) {
	req := &RemoteCreate{ID: s.newID("rep-"), CreatedAt: s.now(), RoleARN: d.RoleARN, DestAccount: destAccount, Dest: d}
	err := s.store.View(ctx, func(tx Tx) error {
		src, err := replicableSource(tx, p, sourceID)
		if err != nil {
			return err
		}
		req.Source = src.Key()
		req.OriginalSourceARN = orDefault(src.OriginalSourceARN, src.ARN())
		req.SourceEncrypted, req.PerformanceMode = src.Encrypted, src.PerformanceMode
		req.Name, _ = src.Name()
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Registered before the peer can know the ID, released only after the
	// record below was written or not (PeerQuery).
	s.creating.Store(req.ID, struct{}{})
	defer s.creating.Delete(req.ID)
	got, err := s.cfg.Peers.CreateDestination(ctx, peer, req)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return nil, e // the peer refused; it made nothing
		}
		return nil, &Error{Code: DependencyTimeout, Message: fmt.Sprintf("Cannot create the destination: destination deployment '%s' unreachable (it serves %s); no replication configuration was created. Retrying is safe: whatever '%s' made for this call is taken over by the retry or removed.", peer, d.Region, peer), Err: err}
	}
	if got.Dest.Account != destAccount || got.Dest.Region != d.Region || got.Dest.ID == "" || d.FileSystemID != "" && got.Dest.ID != d.FileSystemID {
		return nil, E(InternalServerError, "The destination deployment '%s' answered with another destination (%s).", peer, got.Dest)
	}
	rep := &Replication{
		ID: req.ID, Source: req.Source, Dest: got.Dest, OriginalSourceARN: req.OriginalSourceARN,
		CreatedAt: req.CreatedAt, RoleARN: req.RoleARN, NewDest: d.FileSystemID == "",
		Status: RepEnabling, Peer: peer, PeerSide: PeerDestination,
	}
	err = s.store.Update(ctx, func(tx Tx) error {
		if _, err := replicableSource(tx, p, sourceID); err != nil {
			return err
		}
		if err := tx.InsertReplication(rep); err != nil {
			return fmt.Errorf("insert replication: %w", err)
		}
		return nil
	})
	if err != nil {
		// Raced with another change of the source: not recorded, so the
		// peer removes its side when it next asks.
		s.log.Warn("replication configuration not recorded after the peer made its destination; the peer removes it",
			"replicationId", rep.ID, "peer", peer, "destination", rep.Dest.String(), "err", err)
		return nil, err
	}
	s.replicationChanged()
	return rep, nil
}

// PeerQuery answers peer's question about configuration id, whose
// destination the peer holds: PeerPending while the call creating it waits
// here, PeerRecorded if this deployment has a record of it, PeerUnknown
// otherwise. The order matters: a call leaves s.creating only after its
// record was written or not, so a configuration not in s.creating is final
// in the store.
func (s *Service) PeerQuery(ctx context.Context, peer, id string) (string, error) {
	if _, ok := s.creating.Load(id); ok {
		return PeerPending, nil
	}
	state := PeerUnknown
	err := s.store.View(ctx, func(tx Tx) error {
		_, err := tx.Replication(id)
		switch {
		case err == nil:
			state = PeerRecorded // whichever peer it names: never "unknown" for a record
		case !errors.Is(err, ErrNotFound):
			return err
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return state, nil
}

// AcceptReplication creates or claims, for peer, the destination of a
// configuration whose source the peer holds, with the rules of a local
// one (cross-account consent, protection, encryption, quota). Asked again
// for the same configuration it answers the same. A configuration of the
// same source left here by an earlier attempt (another ID, never written
// into) is looked into first: if the peer says it never recorded it, this
// attempt takes over its new destination when it asked for the same one,
// or else the earlier one's destination is undone (abandonDestination) and
// this attempt's placed as usual; so a create retried after a lost answer
// ends with one configuration and one destination here.
func (s *Service) AcceptReplication(ctx context.Context, peer string, req *RemoteCreate) (*RemoteDestination, error) {
	if name, ok := s.peerFor(req.Source.Account, req.Source.Region); !ok || name != peer {
		return nil, E(BadRequest, "Source file system '%s' is not in a region this deployment replicates from peer '%s'.", req.Source, peer)
	}
	d, region := req.Dest, req.Dest.Region
	if !s.cfg.Regions.Has(region) {
		return nil, E(BadRequest, "Region '%s' is not enabled for account %s.", region, req.DestAccount)
	}
	if req.DestAccount == req.Source.Account && s.cfg.Accounts != nil && !s.cfg.Accounts(req.DestAccount) {
		return nil, E(BadRequest, "Account %s is not served in region %s.", req.DestAccount, region)
	}
	if d.AvailabilityZoneName != "" {
		if zr, ok := s.cfg.Regions.RegionOfZone(d.AvailabilityZoneName); !ok || zr != region {
			return nil, E(UnsupportedAvailabilityZone, "Availability Zone '%s' does not exist in region %s.", d.AvailabilityZoneName, region)
		}
	}
	// The source as far as the rules need it.
	src := &FileSystem{Account: req.Source.Account, Region: req.Source.Region, ID: req.Source.ID,
		Encrypted: req.SourceEncrypted, PerformanceMode: req.PerformanceMode, Tags: []Tag{}}
	if req.Name != "" {
		src.Tags = append(src.Tags, Tag{Key: "Name", Value: req.Name})
	}
	rep := &Replication{
		ID: req.ID, Source: req.Source, OriginalSourceARN: req.OriginalSourceARN, CreatedAt: req.CreatedAt,
		RoleARN: req.RoleARN, Status: RepEnabling, Peer: peer, PeerSide: PeerSource,
	}
	earlier, err := s.earlierAttempt(ctx, peer, req)
	if err != nil {
		return nil, err
	}
	out := &RemoteDestination{}
	var undone *Replication // the earlier attempt's configuration, removed
	adopted := false
	err = s.store.Update(ctx, func(tx Tx) error {
		if old, err := tx.Replication(req.ID); err == nil {
			if old.Peer != peer || old.Source != req.Source || !old.Running() {
				return E(ReplicationAlreadyExists, "Replication configuration %s exists here with another source.", req.ID)
			}
			dst, err := tx.FileSystem(old.Dest.Account, old.Dest.Region, old.Dest.ID)
			if err != nil {
				return fmt.Errorf("load destination: %w", err)
			}
			out.Dest, out.State = old.Dest, dst.State
			return nil
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		cur, err := sameSource(tx, req.Source, req.ID)
		if err != nil {
			return err
		}
		if cur != nil {
			// Only the one the peer said it never recorded, unchanged since.
			if cur.ID != earlier || !inDoubt(cur, peer) {
				return alreadyReplicated(cur)
			}
			undone = cur
			dst, err := adoptableDestination(tx, cur, req)
			if err != nil {
				return err
			}
			if err := tx.DeleteReplication(cur.ID); err != nil {
				return fmt.Errorf("delete replication: %w", err)
			}
			if dst != nil {
				adopted = true
				rep.Dest, rep.NewDest = dst.Key(), true
				dst.OriginalSourceARN = rep.OriginalSourceARN
				if err := tx.UpdateFileSystem(dst); err != nil {
					return fmt.Errorf("update destination: %w", err)
				}
				if err := tx.InsertReplication(rep); err != nil {
					return fmt.Errorf("insert replication: %w", err)
				}
				out.Dest, out.State = dst.Key(), dst.State
				return nil
			}
			if err := s.abandonDestination(tx, cur); err != nil {
				return err
			}
		}
		dst, err := s.placeDestination(tx, rep, src, req.DestAccount, region, d)
		if err != nil {
			return err
		}
		out.Dest, out.State = dst.Key(), dst.State
		return nil
	})
	if err != nil {
		return nil, err
	}
	if undone != nil {
		how := "its destination undone"
		if adopted {
			how = "its destination taken over"
		}
		s.log.Info("replication configuration of an earlier attempt, which the source deployment never recorded, replaced; "+how,
			"replicationId", undone.ID, "peer", peer, "source", undone.Source.String(), "destination", undone.Dest.String())
	}
	s.dataPlaneChanged()
	s.Kick()
	s.replicationChanged()
	return out, nil
}

// earlierAttempt finds the configuration of req's source that an earlier
// attempt at the same creation left here and asks the peer about it: its
// ID when the peer never recorded it (PeerUnknown), "" when there is none.
// Any other configuration of that source refuses req.
func (s *Service) earlierAttempt(ctx context.Context, peer string, req *RemoteCreate) (string, error) {
	var cur *Replication
	err := s.store.View(ctx, func(tx Tx) error {
		var err error
		cur, err = sameSource(tx, req.Source, req.ID)
		return err
	})
	if err != nil || cur == nil {
		return "", err
	}
	if !inDoubt(cur, peer) {
		return "", alreadyReplicated(cur)
	}
	state, err := s.cfg.Peers.Query(ctx, peer, cur.ID)
	switch {
	case err != nil:
		return "", &Error{Code: DependencyTimeout, Err: err, Message: fmt.Sprintf(
			"File system '%s' has a replication configuration (%s) at the destination deployment from an earlier attempt, and the destination deployment cannot ask this one about it; retry later.",
			req.Source.ID, cur.ID)}
	case state == PeerPending:
		return "", E(ReplicationAlreadyExists, "Another CreateReplicationConfiguration call for file system '%s' is in progress (configuration %s).", req.Source.ID, cur.ID)
	case state != PeerUnknown:
		return "", alreadyReplicated(cur)
	}
	return cur.ID, nil
}

// sameSource is the configuration other than id whose source is src, if
// any (a source is in one configuration at most).
func sameSource(tx Tx, src FSKey, id string) (*Replication, error) {
	reps, err := tx.ReplicationsByFSID(src.ID)
	if err != nil {
		return nil, fmt.Errorf("look up replications: %w", err)
	}
	for _, r := range reps {
		if r.Source == src && r.ID != id {
			return r, nil
		}
	}
	return nil, nil
}

func alreadyReplicated(r *Replication) error {
	return E(ReplicationAlreadyExists,
		"File system '%s' is already part of replication configuration %s (source %s, destination %s).",
		r.Source.ID, r.ID, r.Source.ID, r.Dest.ID)
}

// inDoubt reports whether r is a configuration here whose source peer
// holds and that peer has never written into: all that can be undone
// when peer says it never recorded it.
func inDoubt(r *Replication, peer string) bool {
	return r.Peer == peer && r.PeerSide == PeerSource && r.Running() && r.LastReplicatedAt.IsZero()
}

// adoptableDestination is the new destination cur made, when req asks for
// a new destination just like it (account, region, zone, key) and it is
// untouched: read-only since, not being deleted.
func adoptableDestination(tx Tx, cur *Replication, req *RemoteCreate) (*FileSystem, error) {
	if !cur.NewDest || req.Dest.FileSystemID != "" || cur.Dest.Account != req.DestAccount || cur.Dest.Region != req.Dest.Region {
		return nil, nil
	}
	dst, err := tx.FileSystem(cur.Dest.Account, cur.Dest.Region, cur.Dest.ID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load destination: %w", err)
	}
	key := kmsKeyARN(Principal{Account: req.DestAccount, Region: req.Dest.Region}, req.Dest.KmsKeyID)
	if dst.State == StateDeleting || dst.Protection != ProtectionReplicating ||
		dst.AvailabilityZoneName != req.Dest.AvailabilityZoneName || dst.KmsKeyID != key {
		return nil, nil
	}
	return dst, nil
}

// abandonDestination undoes what configuration r, which its source's
// deployment never recorded, did to its destination here, which nobody has
// written into (no pass reached it, and it has been read-only since). A
// file system r created is deleted, unless someone here started using it
// (mount targets, access points): then it is released as a deleted
// configuration's is (protection ENABLED, writable, kept). A file system r
// claimed gets back the protection it had, DISABLED, and keeps its data.
func (s *Service) abandonDestination(tx Tx, r *Replication) error {
	dst, err := tx.FileSystem(r.Dest.Account, r.Dest.Region, r.Dest.ID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load destination: %w", err)
	}
	if dst.Protection != ProtectionReplicating || dst.State == StateDeleting {
		return nil
	}
	switch {
	case !r.NewDest:
		dst.Protection = ProtectionDisabled
	case dst.MountTargets == 0:
		n, err := tx.CountAccessPoints(dst.Account, dst.Region, dst.ID)
		if err != nil {
			return fmt.Errorf("count access points: %w", err)
		}
		if n > 0 {
			dst.Protection = ProtectionEnabled
			break
		}
		dst.State, dst.DueAt = StateDeleting, s.now()
	default:
		dst.Protection = ProtectionEnabled
	}
	return tx.UpdateFileSystem(dst)
}

// AbandonUnrecorded removes configuration id, whose destination is here,
// after its source's deployment peer answered that it never recorded it
// (PeerUnknown), and undoes what it did to its destination
// (abandonDestination). It does nothing, and reports false, unless the
// configuration is still one peer never wrote into (inDoubt). The
// replication engine calls it once the configuration's receiver is closed.
func (s *Service) AbandonUnrecorded(ctx context.Context, peer, id string) (bool, error) {
	var r *Replication
	err := s.store.Update(ctx, func(tx Tx) error {
		cur, err := tx.Replication(id)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if !inDoubt(cur, peer) {
			return nil
		}
		if err := s.abandonDestination(tx, cur); err != nil {
			return err
		}
		r = cur
		return tx.DeleteReplication(id)
	})
	if err != nil || r == nil {
		return false, err
	}
	s.log.Info("replication configuration its source deployment never recorded removed; its destination undone",
		"replicationId", id, "peer", peer, "source", r.Source.String(), "destination", r.Dest.String())
	s.dataPlaneChanged()
	s.Kick()
	s.replicationChanged()
	return true, nil
}

// ReplicationForPeer returns the running configuration id whose source
// peer holds and whose destination is here: what the peer may write.
// Anything else is ErrReplicationGone.
func (s *Service) ReplicationForPeer(ctx context.Context, peer, id string) (*Replication, *FileSystem, error) {
	var r *Replication
	var dst *FileSystem
	err := s.store.View(ctx, func(tx Tx) error {
		var err error
		if r, err = tx.Replication(id); err != nil {
			return err
		}
		if r.Peer != peer || r.PeerSide != PeerSource || !r.Running() {
			return ErrNotFound
		}
		dst, err = tx.FileSystem(r.Dest.Account, r.Dest.Region, r.Dest.ID)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return nil, nil, ErrReplicationGone
	}
	return r, dst, err
}

// PeerEvent applies what peer says happened to configuration id on its
// side. A configuration unknown here, or shared with another peer, is
// left alone (and the event counts as delivered).
func (s *Service) PeerEvent(ctx context.Context, peer, id, event string) error {
	if event != PeerDeleteAll && event != PeerDeleteLocal {
		return E(BadRequest, "Unknown peer event '%s'.", event)
	}
	err := s.store.Update(ctx, func(tx Tx) error {
		r, err := tx.Replication(id)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if r.Peer != peer {
			return nil
		}
		if event == PeerDeleteAll {
			if r.Status != RepDeleting {
				r.Status, r.StatusMessage = RepDeleting, ""
				r.DueAt = s.now()
			}
			r.PeerAcked = true
			return tx.UpdateReplication(r)
		}
		if r.PeerSide == PeerSource {
			r.SourceDeleted = true
		} else {
			r.DestDeleted = true
		}
		if r.SourceDeleted && r.DestDeleted {
			return forget(tx, r)
		}
		if r.Status != RepDeleting {
			r.Status = RepError
			r.StatusMessage = fmt.Sprintf("The replication configuration was deleted on the %s side (deployment '%s') with LOCAL_CONFIGURATION_ONLY; replication has stopped. Delete the configuration here too.", r.PeerSide, peer)
		}
		return tx.UpdateReplication(r)
	})
	if err == nil {
		s.dataPlaneChanged()
		s.replicationChanged()
	}
	return err
}

// PeerAcknowledged records that the peer took this side's deletion into
// account. A configuration whose side here was deleted locally is then
// forgotten; one being deleted is finished by FinishDeletion.
func (s *Service) PeerAcknowledged(ctx context.Context, id string) error {
	err := s.store.Update(ctx, func(tx Tx) error {
		r, err := tx.Replication(id)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if r.Status != RepDeleting && r.LocalSideDeleted() {
			return tx.DeleteReplication(id)
		}
		r.PeerAcked = true
		return tx.UpdateReplication(r)
	})
	if err == nil {
		s.replicationChanged()
	}
	return err
}

// LocalSideDeleted reports whether this deployment's side of a
// configuration shared with a peer was deleted with
// LOCAL_CONFIGURATION_ONLY here.
func (r *Replication) LocalSideDeleted() bool {
	return r.PeerSide == PeerSource && r.DestDeleted || r.PeerSide == PeerDestination && r.SourceDeleted
}

// ReleaseDestination makes the destination of configuration id writable
// again (protection ENABLED), keeping its data. The replication engine
// calls it for a destination deleted locally once nothing writes into it
// any more.
func (s *Service) ReleaseDestination(ctx context.Context, id string) error {
	err := s.store.Update(ctx, func(tx Tx) error {
		r, err := tx.Replication(id)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return releaseDestination(tx, r)
	})
	if err == nil {
		s.dataPlaneChanged()
	}
	return err
}

// NoteDeletionWait sets the StatusMessage of a configuration being deleted
// that waits for its peer.
func (s *Service) NoteDeletionWait(ctx context.Context, id, msg string) error {
	return s.store.Update(ctx, func(tx Tx) error {
		r, err := tx.Replication(id)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if r.Status != RepDeleting || r.StatusMessage == msg {
			return nil
		}
		r.StatusMessage = msg
		return tx.UpdateReplication(r)
	})
}
