package efs

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/efsd/efsd/internal/glob"
)

// This file evaluates file system policies (IAM resource policies) for the
// two decisions efsd makes with them: what NFS clients that do not use IAM
// authorization (the anonymous principal) may do, and whether another
// account's role may replicate into a file system.
//
// The evaluation follows IAM's rules: an explicit Deny wins, otherwise an
// Allow grants, otherwise the request is denied. efsd knows only part of
// IAM, so each part of a statement evaluates to yes, no or unknown (a
// condition key or operator efsd does not model, or a malformed element).
// An unknown part never makes an Allow apply and always lets a Deny apply:
// whatever efsd cannot read, it reads in the way that grants less.

// PolicyRequest is one access checked against a policy.
type PolicyRequest struct {
	// Action, e.g. "elasticfilesystem:ClientMount".
	Action string
	// Resource is the ARN of the file system the policy is attached to.
	Resource string
	// Principal is who asks: the anonymous principal (NFS without IAM) or
	// an IAM role.
	Principal PolicyPrincipal
	// Context holds the condition keys present in the request, by their
	// lower-case names; a key of knownConditionKeys missing from it is
	// absent from the request.
	Context map[string]string
}

// PolicyPrincipal is the identity a request is made as.
type PolicyPrincipal struct {
	// Anonymous is the principal of NFS clients that do not use IAM
	// authorization; it matches only Principal "*" ({"AWS": "*"}).
	Anonymous bool
	// Account is the 12-digit account of an IAM principal.
	Account string
	// ARN of the IAM principal, e.g. arn:aws:iam::111122223333:role/r.
	ARN string
}

// knownConditionKeys are the condition keys efsd models (lower case). A
// key outside this set makes its condition unknown; a key in it but not in
// a request's Context is absent from that request.
var knownConditionKeys = map[string]bool{
	"aws:securetransport":                      true,
	"aws:sourceip":                             true,
	"aws:principalaccount":                     true,
	"aws:principalarn":                         true,
	"aws:sourceaccount":                        true,
	"aws:sourcearn":                            true,
	"elasticfilesystem:accesspointarn":         true,
	"elasticfilesystem:accessedviamounttarget": true,
}

// tri is a three-valued truth: a policy element efsd cannot evaluate is
// unknown rather than true or false.
type tri int8

const (
	no tri = iota
	yes
	unknown
)

func triOf(b bool) tri {
	if b {
		return yes
	}
	return no
}

// and combines parts that must all hold: any no is no, else any unknown
// is unknown.
func and(ts ...tri) tri {
	out := yes
	for _, t := range ts {
		switch t {
		case no:
			return no
		case unknown:
			out = unknown
		}
	}
	return out
}

// Policy is a parsed file system policy.
type Policy struct {
	stmts []statement
}

type statement struct {
	deny bool
	// Principal or NotPrincipal (exactly one is set unless the statement
	// is malformed).
	prin, notPrin *principalSet
	actions       []string
	notAction     bool
	resources     []string // nil: no Resource element (the policy's own resource)
	notResource   bool
	conds         []condition
	bad           bool // an element efsd cannot read: every part is unknown
}

type principalSet struct {
	any bool     // "*" or {"AWS": "*"}
	aws []string // the "AWS" values; other principal types never match
}

type condition struct {
	op       string // lower-case base operator, e.g. "stringequals"
	ifExists bool
	key      string // lower case
	values   []string
	bad      bool // unknown operator or malformed values
}

// ParsePolicy reads a policy document. It fails only when the document is
// not a JSON object with statements; a statement efsd cannot fully read is
// kept and evaluated as unknown.
func ParsePolicy(doc string) (*Policy, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(doc), &top); err != nil {
		return nil, fmt.Errorf("policy is not a JSON object: %w", err)
	}
	raws, ok := objectOrList(top["Statement"])
	if !ok || len(raws) == 0 {
		return nil, fmt.Errorf("policy has no statements")
	}
	p := &Policy{}
	for _, raw := range raws {
		p.stmts = append(p.stmts, parseStatement(raw))
	}
	return p, nil
}

// objectOrList reads a JSON value that is one object or a list of objects.
func objectOrList(raw json.RawMessage) ([]map[string]json.RawMessage, bool) {
	if raw == nil {
		return nil, false
	}
	var list []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &list); err == nil {
		return list, true
	}
	var one map[string]json.RawMessage
	if err := json.Unmarshal(raw, &one); err != nil {
		return nil, false
	}
	return []map[string]json.RawMessage{one}, true
}

// stringOrList reads a JSON string or list of strings.
func stringOrList(raw json.RawMessage) ([]string, bool) {
	var list []string
	if err := json.Unmarshal(raw, &list); err == nil {
		return list, true
	}
	var one string
	if err := json.Unmarshal(raw, &one); err != nil {
		return nil, false
	}
	return []string{one}, true
}

func parseStatement(st map[string]json.RawMessage) statement {
	var s statement
	var effect string
	if json.Unmarshal(st["Effect"], &effect) != nil || (effect != "Allow" && effect != "Deny") {
		// Neither Allow nor Deny: read as a Deny that may apply.
		return statement{deny: true, bad: true}
	}
	s.deny = effect == "Deny"
	var ok bool
	switch {
	case st["Principal"] != nil && st["NotPrincipal"] == nil:
		s.prin, ok = parsePrincipal(st["Principal"])
	case st["NotPrincipal"] != nil && st["Principal"] == nil:
		s.notPrin, ok = parsePrincipal(st["NotPrincipal"])
	}
	if !ok {
		s.bad = true
	}
	switch {
	case st["Action"] != nil && st["NotAction"] == nil:
		s.actions, ok = stringOrList(st["Action"])
	case st["NotAction"] != nil && st["Action"] == nil:
		s.actions, ok = stringOrList(st["NotAction"])
		s.notAction = true
	default:
		ok = false
	}
	if !ok {
		s.bad = true
	}
	switch {
	case st["Resource"] != nil && st["NotResource"] == nil:
		s.resources, ok = stringOrList(st["Resource"])
	case st["NotResource"] != nil && st["Resource"] == nil:
		s.resources, ok = stringOrList(st["NotResource"])
		s.notResource = true
	case st["Resource"] == nil && st["NotResource"] == nil:
		ok = true
	default:
		ok = false
	}
	if !ok {
		s.bad = true
	}
	if raw := st["Condition"]; raw != nil {
		s.conds, ok = parseConditions(raw)
		if !ok {
			s.bad = true
		}
	}
	return s
}

func parsePrincipal(raw json.RawMessage) (*principalSet, bool) {
	var star string
	if json.Unmarshal(raw, &star) == nil {
		return &principalSet{any: star == "*"}, star == "*"
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || len(m) == 0 {
		return nil, false
	}
	ps := &principalSet{}
	for typ, v := range m {
		vals, ok := stringOrList(v)
		if !ok {
			return nil, false
		}
		if typ != "AWS" {
			continue // Service, Federated, CanonicalUser: never efsd's principals
		}
		for _, a := range vals {
			if a == "*" {
				ps.any = true
			}
		}
		ps.aws = append(ps.aws, vals...)
	}
	return ps, true
}

func parseConditions(raw json.RawMessage) ([]condition, bool) {
	var ops map[string]map[string]json.RawMessage
	if json.Unmarshal(raw, &ops) != nil {
		return nil, false
	}
	var out []condition
	for op, keys := range ops {
		for key, v := range keys {
			c := condition{key: strings.ToLower(key)}
			c.op, c.ifExists, c.bad = parseOperator(op)
			if vals, ok := conditionValues(v); ok {
				c.values = vals
			} else {
				c.bad = true
			}
			out = append(out, c)
		}
	}
	return out, true
}

// conditionOperators are the operators efsd evaluates (lower case), with
// whether each is negated (true when the key is absent).
var conditionOperators = map[string]bool{
	"stringequals": false, "stringnotequals": true,
	"stringequalsignorecase": false, "stringnotequalsignorecase": true,
	"stringlike": false, "stringnotlike": true,
	"arnequals": false, "arnlike": false, "arnnotequals": true, "arnnotlike": true,
	"bool":      false,
	"ipaddress": false, "notipaddress": true,
	"null": false,
}

func parseOperator(op string) (base string, ifExists, bad bool) {
	base = strings.ToLower(op)
	if strings.Contains(base, ":") {
		return base, false, true // ForAnyValue:/ForAllValues: set operators
	}
	if b, ok := strings.CutSuffix(base, "ifexists"); ok {
		base, ifExists = b, true
	}
	if _, ok := conditionOperators[base]; !ok || ifExists && base == "null" {
		return base, ifExists, true
	}
	return base, ifExists, false
}

// conditionValues reads a condition's value or values: strings, booleans
// or numbers, as IAM accepts them.
func conditionValues(raw json.RawMessage) ([]string, bool) {
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil {
		list = []json.RawMessage{raw}
	}
	out := make([]string, 0, len(list))
	for _, v := range list {
		var s string
		if json.Unmarshal(v, &s) == nil {
			out = append(out, s)
			continue
		}
		var b bool
		var f json.Number
		switch {
		case json.Unmarshal(v, &b) == nil:
			out = append(out, fmt.Sprint(b))
		case json.Unmarshal(v, &f) == nil:
			out = append(out, f.String())
		default:
			return nil, false
		}
	}
	return out, true
}

// Allows reports whether the policy grants r: some Allow statement
// applies and no Deny statement may apply.
func (p *Policy) Allows(r PolicyRequest) bool {
	allowed := false
	for i := range p.stmts {
		s := &p.stmts[i]
		m := s.matches(r)
		if s.deny && m != no {
			return false
		}
		if !s.deny && m == yes {
			allowed = true
		}
	}
	return allowed
}

func (s *statement) matches(r PolicyRequest) tri {
	if s.bad {
		return unknown
	}
	var prin tri
	if s.prin != nil {
		prin = triOf(s.prin.names(r.Principal, false))
	} else {
		prin = triOf(!s.notPrin.names(r.Principal, true))
	}
	act := no
	for _, a := range s.actions {
		if glob.Match(strings.ToLower(a), strings.ToLower(r.Action)) {
			act = yes
			break
		}
	}
	if s.notAction {
		act = triOf(act == no)
	}
	res := yes
	if s.resources != nil {
		res = no
		for _, pat := range s.resources {
			if glob.Match(pat, r.Resource) {
				res = yes
				break
			}
		}
		if s.notResource {
			res = triOf(res == no)
		}
	}
	parts := []tri{prin, act, res}
	for _, c := range s.conds {
		parts = append(parts, c.eval(r.Context))
	}
	return and(parts...)
}

// names reports whether the set names principal p. In a Principal, an
// account (its ID or arn:…:iam::ID:root) names every principal of that
// account; in a NotPrincipal (exact), as in IAM, it names only the account
// itself, so it never excludes one of its roles.
func (ps *principalSet) names(p PolicyPrincipal, exact bool) bool {
	if ps.any {
		return true
	}
	if p.Anonymous {
		return false
	}
	for _, a := range ps.aws {
		if a == p.ARN {
			return true
		}
		if exact {
			continue
		}
		if a == p.Account || accountRoot.MatchString(a) && strings.HasSuffix(a, "::"+p.Account+":root") {
			return true
		}
	}
	return false
}

var accountRoot = regexp.MustCompile(`^arn:aws[a-zA-Z-]*:iam::\d{12}:root$`)

func (c condition) eval(ctx map[string]string) tri {
	if c.bad || !knownConditionKeys[c.key] {
		return unknown
	}
	v, present := ctx[c.key]
	negated := conditionOperators[c.op]
	if c.op == "null" {
		if len(c.values) != 1 {
			return unknown
		}
		switch strings.ToLower(c.values[0]) {
		case "true":
			return triOf(!present)
		case "false":
			return triOf(present)
		}
		return unknown
	}
	if !present {
		return triOf(c.ifExists || negated)
	}
	hit := false
	for _, want := range c.values {
		m, ok := matchValue(c.op, want, v)
		if !ok {
			return unknown
		}
		if m {
			hit = true
			break
		}
	}
	return triOf(hit != negated)
}

// matchValue compares a request value with one policy value under a base
// operator (negation aside); ok is false when the policy value cannot be
// read (an invalid IP range).
func matchValue(op, want, got string) (match, ok bool) {
	switch op {
	case "stringequals", "stringnotequals":
		return want == got, true
	case "stringequalsignorecase", "stringnotequalsignorecase":
		return strings.EqualFold(want, got), true
	case "stringlike", "stringnotlike", "arnequals", "arnlike", "arnnotequals", "arnnotlike":
		return glob.Match(want, got), true
	case "bool":
		return strings.EqualFold(want, got), true
	case "ipaddress", "notipaddress":
		addr, err := netip.ParseAddr(got)
		if err != nil {
			return false, true
		}
		pfx, err := netip.ParsePrefix(want)
		if err != nil {
			a, err2 := netip.ParseAddr(want)
			if err2 != nil {
				return false, false
			}
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		return pfx.Contains(addr), true
	}
	return false, false
}
