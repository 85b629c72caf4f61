package efs

import (
	"context"
	"encoding/json"
	"strings"
)

// PutFileSystemPolicy attaches a resource policy to a file system after
// checking that it is a well-formed IAM policy document.
func (s *Service) PutFileSystemPolicy(ctx context.Context, p Principal, id, policy string) (*FileSystem, error) {
	if err := checkPolicy(policy); err != nil {
		return nil, err
	}
	fs, err := s.update(ctx, p, id, func(fs *FileSystem) error {
		if err := requireAvailable(fs); err != nil {
			return err
		}
		fs.Policy = policy
		return nil
	})
	if err == nil {
		s.dataPlaneChanged() // NFS servers enforce the policy
	}
	return fs, err
}

// DescribeFileSystemPolicy returns the file system's policy, or
// PolicyNotFound when it has none.
func (s *Service) DescribeFileSystemPolicy(ctx context.Context, p Principal, id string) (*FileSystem, error) {
	fs, err := s.view(ctx, p, id)
	if err != nil {
		return nil, err
	}
	if fs.Policy == "" {
		return nil, E(PolicyNotFound, "File system '%s' has no file system policy.", fs.ID)
	}
	return fs, nil
}

// DeleteFileSystemPolicy removes the file system's policy; deleting a
// missing policy is not an error, as in EFS.
func (s *Service) DeleteFileSystemPolicy(ctx context.Context, p Principal, id string) error {
	_, err := s.update(ctx, p, id, func(fs *FileSystem) error {
		if err := requireAvailable(fs); err != nil {
			return err
		}
		fs.Policy = ""
		return nil
	})
	if err == nil {
		s.dataPlaneChanged() // NFS servers go back to the default policy
	}
	return err
}

// NFS client actions of a file system policy.
const (
	ActionClientMount      = "elasticfilesystem:ClientMount"
	ActionClientWrite      = "elasticfilesystem:ClientWrite"
	ActionClientRootAccess = "elasticfilesystem:ClientRootAccess"
)

// ClientAccess is what a file system policy lets NFS clients that do not
// use IAM authorization (the anonymous principal) do: mount (read), write,
// and act as root (without it, root is squashed to 65534).
type ClientAccess struct {
	Mount, Write, Root bool
}

// FullClientAccess is EFS's default file system policy: full access for
// every client that can reach a mount target.
var FullClientAccess = ClientAccess{Mount: true, Write: true, Root: true}

// ClientAccess evaluates the policy for an anonymous NFS client of the
// file system fsARN, through the access point apARN ("" for none). The
// request context is that of plain NFS at a mount target: no TLS
// (aws:SecureTransport false), elasticfilesystem:AccessedViaMountTarget
// true, elasticfilesystem:AccessPointArn when through an access point.
// aws:SourceIp is absent: EFS sets it only for public addresses, and mount
// targets are reached from inside their VPC.
func (p *Policy) ClientAccess(fsARN, apARN string) ClientAccess {
	ctx := map[string]string{
		"aws:securetransport":                      "false",
		"elasticfilesystem:accessedviamounttarget": "true",
	}
	if apARN != "" {
		ctx["elasticfilesystem:accesspointarn"] = apARN
	}
	allows := func(action string) bool {
		return p.Allows(PolicyRequest{Action: action, Resource: fsARN, Principal: PolicyPrincipal{Anonymous: true}, Context: ctx})
	}
	return ClientAccess{
		Mount: allows(ActionClientMount),
		Write: allows(ActionClientWrite),
		Root:  allows(ActionClientRootAccess),
	}
}

// ParsedPolicy returns the file system's parsed policy, nil when it has
// none (the default policy is in effect).
func (fs *FileSystem) ParsedPolicy() (*Policy, error) {
	if fs.Policy == "" {
		return nil, nil
	}
	return ParsePolicy(fs.Policy)
}

// checkPolicy accepts a JSON IAM resource policy: an object with a
// Statement (one object or a non-empty list) whose statements each carry
// Effect Allow or Deny, an Action or NotAction, and a Principal or
// NotPrincipal (resource policies must name whom they apply to).
func checkPolicy(policy string) error {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(policy), &doc); err != nil {
		return E(InvalidPolicyException, "The policy is not a valid JSON object: %v.", err)
	}
	raw, ok := doc["Statement"]
	if !ok {
		return E(InvalidPolicyException, "The policy has no Statement.")
	}
	var stmts []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &stmts); err != nil {
		var one map[string]json.RawMessage
		if err := json.Unmarshal(raw, &one); err != nil {
			return E(InvalidPolicyException, "The policy's Statement must be an object or a list of objects.")
		}
		stmts = append(stmts, one)
	}
	if len(stmts) == 0 {
		return E(InvalidPolicyException, "The policy's Statement list is empty.")
	}
	if v, ok := doc["Version"]; ok {
		var version string
		if json.Unmarshal(v, &version) != nil || (version != "2012-10-17" && version != "2008-10-17") {
			return E(InvalidPolicyException, "The policy Version must be \"2012-10-17\" or \"2008-10-17\".")
		}
	}
	for i, st := range stmts {
		var effect string
		if json.Unmarshal(st["Effect"], &effect) != nil || (effect != "Allow" && effect != "Deny") {
			return E(InvalidPolicyException, "Statement %d: Effect must be \"Allow\" or \"Deny\".", i+1)
		}
		if st["Action"] == nil && st["NotAction"] == nil {
			return E(InvalidPolicyException, "Statement %d: an Action or NotAction is required.", i+1)
		}
		if st["Principal"] == nil && st["NotPrincipal"] == nil {
			return E(InvalidPolicyException, "Statement %d: a Principal or NotPrincipal is required in a resource policy.", i+1)
		}
		for _, key := range []string{"Action", "NotAction"} {
			if a := st[key]; a != nil && !validActions(a) {
				return E(InvalidPolicyException, "Statement %d: %s must name elasticfilesystem actions.", i+1, key)
			}
		}
	}
	return nil
}

// validActions accepts a string or list of strings, each an EFS action
// ("elasticfilesystem:ClientMount") or a wildcard.
func validActions(raw json.RawMessage) bool {
	var list []string
	if json.Unmarshal(raw, &list) != nil {
		var one string
		if json.Unmarshal(raw, &one) != nil {
			return false
		}
		list = []string{one}
	}
	for _, a := range list {
		if a != "*" && !strings.HasPrefix(strings.ToLower(a), "elasticfilesystem:") {
			return false
		}
	}
	return len(list) > 0
}

// lifecycle rule orderings: how many days each rule value stands for, so
// archive transitions can be checked to come after IA ones.
var ruleDays = map[string]int{
	"AFTER_1_DAY": 1, "AFTER_7_DAYS": 7, "AFTER_14_DAYS": 14, "AFTER_30_DAYS": 30,
	"AFTER_60_DAYS": 60, "AFTER_90_DAYS": 90, "AFTER_180_DAYS": 180,
	"AFTER_270_DAYS": 270, "AFTER_365_DAYS": 365,
}

// PutLifecycleConfiguration replaces the file system's lifecycle policies;
// an empty list turns lifecycle management off. Each policy names exactly
// one transition, each transition appears once, archiving needs the
// elastic throughput and generalPurpose performance modes, and data must
// move to IA before it moves to archive.
func (s *Service) PutLifecycleConfiguration(ctx context.Context, p Principal, id string, policies []LifecyclePolicy) ([]LifecyclePolicy, error) {
	var merged LifecyclePolicy
	for _, pol := range policies {
		set := 0
		for _, pair := range []struct{ src, dst *string }{
			{&pol.TransitionToIA, &merged.TransitionToIA},
			{&pol.TransitionToPrimaryStorageClass, &merged.TransitionToPrimaryStorageClass},
			{&pol.TransitionToArchive, &merged.TransitionToArchive},
		} {
			if *pair.src == "" {
				continue
			}
			set++
			if *pair.dst != "" {
				return nil, E(BadRequest, "Each lifecycle transition may appear only once in LifecyclePolicies.")
			}
			*pair.dst = *pair.src
		}
		if set != 1 {
			return nil, E(BadRequest, "Each LifecyclePolicy must specify exactly one transition; found %d.", set)
		}
	}
	if merged.TransitionToIA != "" && merged.TransitionToArchive != "" &&
		ruleDays[merged.TransitionToArchive] <= ruleDays[merged.TransitionToIA] {
		return nil, E(BadRequest, "TransitionToArchive (%s) must be later than TransitionToIA (%s).",
			merged.TransitionToArchive, merged.TransitionToIA)
	}
	fs, err := s.update(ctx, p, id, func(fs *FileSystem) error {
		if err := requireAvailable(fs); err != nil {
			return err
		}
		if merged.TransitionToArchive != "" && (fs.ThroughputMode != Elastic || fs.PerformanceMode != GeneralPurpose) {
			return E(BadRequest, "TransitionToArchive requires the elastic throughput mode and the generalPurpose performance mode.")
		}
		fs.LifecyclePolicies = append([]LifecyclePolicy(nil), policies...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return fs.LifecyclePolicies, nil
}

// DescribeLifecycleConfiguration returns the file system's lifecycle
// policies (none when lifecycle management is off).
func (s *Service) DescribeLifecycleConfiguration(ctx context.Context, p Principal, id string) ([]LifecyclePolicy, error) {
	fs, err := s.view(ctx, p, id)
	if err != nil {
		return nil, err
	}
	return fs.LifecyclePolicies, nil
}

// PutBackupPolicy turns automatic backups on or off. The change passes
// through ENABLING or DISABLING until the lifecycle worker settles it.
func (s *Service) PutBackupPolicy(ctx context.Context, p Principal, id, status string) (string, error) {
	if status != BackupEnabled && status != BackupDisabled {
		return "", E(BadRequest, "BackupPolicy Status must be ENABLED or DISABLED, not '%s'.", status)
	}
	fs, err := s.update(ctx, p, id, func(fs *FileSystem) error {
		if err := requireAvailable(fs); err != nil {
			return err
		}
		switch {
		case status == BackupEnabled && (fs.BackupStatus == BackupDisabled || fs.BackupStatus == BackupDisabling):
			fs.BackupStatus = BackupEnabling
		case status == BackupDisabled && (fs.BackupStatus == BackupEnabled || fs.BackupStatus == BackupEnabling):
			fs.BackupStatus = BackupDisabling
		default:
			return nil
		}
		fs.DueAt = s.now().Add(s.cfg.TransitionDelay)
		return nil
	})
	if err != nil {
		return "", err
	}
	s.Kick()
	return fs.BackupStatus, nil
}

// DescribeBackupPolicy returns the file system's backup status.
func (s *Service) DescribeBackupPolicy(ctx context.Context, p Principal, id string) (string, error) {
	fs, err := s.view(ctx, p, id)
	if err != nil {
		return "", err
	}
	return fs.BackupStatus, nil
}

// PutAccountPreferences chooses long (17-digit) or short (8-digit) IDs
// for the account's new file systems in the caller's region.
func (s *Service) PutAccountPreferences(ctx context.Context, p Principal, idType string) (string, error) {
	if idType != LongID && idType != ShortID {
		return "", E(BadRequest, "ResourceIdType must be LONG_ID or SHORT_ID, not '%s'.", idType)
	}
	err := s.store.Update(ctx, func(tx Tx) error {
		return tx.PutAccountPreference(p.Account, p.Region, idType)
	})
	return idType, err
}

// DescribeAccountPreferences returns the account's resource ID type in the
// caller's region (LONG_ID unless it chose otherwise).
func (s *Service) DescribeAccountPreferences(ctx context.Context, p Principal) (string, error) {
	var pref string
	err := s.store.View(ctx, func(tx Tx) error {
		var err error
		pref, err = tx.AccountPreference(p.Account, p.Region)
		return err
	})
	if pref == "" {
		pref = LongID
	}
	return pref, err
}
