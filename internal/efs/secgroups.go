package efs

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Protocols of ingress rules, in EC2's IpProtocol vocabulary. efsd serves
// NFS over TCP only, so these are the two that can admit a client.
const (
	ProtocolTCP = "tcp"
	ProtocolAll = "-1" // all traffic
)

// IngressRule admits connections from a range of source addresses (CIDR,
// IPv4 or IPv6) to a range of TCP ports, or to every port when Protocol is
// ProtocolAll. It is EC2's IpPermission with one range.
type IngressRule struct {
	Protocol    string
	FromPort    int `json:",omitempty"`
	ToPort      int `json:",omitempty"`
	CIDR        string
	Description string `json:",omitempty"`
}

// CheckIngressRule validates a rule and returns it normalized: protocol
// "tcp", "6", "-1" or "all" (any case), ports within 0-65535 with
// FromPort <= ToPort for tcp (ignored, and cleared, for all traffic), and a
// CIDR block written in its canonical form (192.168.50.0/24, not
// 192.168.50.7/24, which would hide a typo).
func CheckIngressRule(r IngressRule) (IngressRule, error) {
	switch strings.ToLower(r.Protocol) {
	case "tcp", "6":
		r.Protocol = ProtocolTCP
		for _, p := range []struct {
			name string
			v    int
		}{{"fromPort", r.FromPort}, {"toPort", r.ToPort}} {
			if p.v < 0 || p.v > 65535 {
				return r, fmt.Errorf("%s %d is not a port (0-65535)", p.name, p.v)
			}
		}
		if r.FromPort > r.ToPort {
			return r, fmt.Errorf("fromPort %d is above toPort %d", r.FromPort, r.ToPort)
		}
	case "-1", "all":
		r.Protocol, r.FromPort, r.ToPort = ProtocolAll, 0, 0
	default:
		return r, fmt.Errorf("ipProtocol %q: efsd serves NFS over TCP only; use \"tcp\" or \"-1\" (all traffic)", r.Protocol)
	}
	pfx, err := netip.ParsePrefix(r.CIDR)
	if err != nil {
		return r, fmt.Errorf("cidr %q is not a CIDR block such as 192.168.50.0/24", r.CIDR)
	}
	if pfx.Addr().Zone() != "" {
		return r, fmt.Errorf("cidr %q has a zone", r.CIDR)
	}
	if m := pfx.Masked(); m != pfx {
		return r, fmt.Errorf("cidr %q has host bits set; did you mean %s?", r.CIDR, m)
	}
	r.CIDR = pfx.String()
	return r, nil
}

// AdmitsPort reports whether the rule covers TCP port port.
func (r IngressRule) AdmitsPort(port int) bool {
	return r.Protocol == ProtocolAll || r.Protocol == ProtocolTCP && r.FromPort <= port && port <= r.ToPort
}

// hostLoopback is where this host's own clients come from when they
// connect to a loopback address: Linux picks 127.0.0.1 as the source for
// every address of 127.0.0.0/8.
var hostLoopback = netip.MustParsePrefix("127.0.0.1/32")

// Ingress returns a group's rules in effect. A VPC's default group admits,
// on every port, the VPC's range and its subnets' ranges (EC2's default
// group admits its own members; the VPC's ranges are where members live),
// and when one of those ranges is loopback also 127.0.0.1, the source of
// every local client; then the rules declared for it. The built-in rules
// are derived, not stored, so they follow the subnets declared later. Any other group has
// exactly its declared rules.
func (n *Network) Ingress(g SecurityGroup) []IngressRule {
	if d, ok := n.DefaultSecurityGroup(g.VPCID); !ok || d.ID != g.ID {
		return g.Ingress
	}
	var out []IngressRule
	loopback := false
	add := func(cidr, what string) {
		pfx, err := netip.ParsePrefix(cidr)
		if err != nil {
			return
		}
		pfx = pfx.Masked()
		for _, r := range out { // a subnet inside the VPC's range adds nothing
			if o, err := netip.ParsePrefix(r.CIDR); err == nil && o.Bits() <= pfx.Bits() && o.Contains(pfx.Addr()) {
				return
			}
		}
		loopback = loopback || pfx.Addr().IsLoopback()
		out = append(out, IngressRule{Protocol: ProtocolAll, CIDR: pfx.String(), Description: what})
	}
	for _, v := range n.VPCs {
		if v.ID == g.VPCID {
			add(v.CIDR, "the VPC's range")
		}
	}
	for _, s := range n.Subnets {
		if s.VPCID == g.VPCID {
			add(s.CIDR, "subnet "+s.ID)
		}
	}
	if loopback {
		add(hostLoopback.String(), "this host's loopback clients")
	}
	return append(out, g.Ingress...)
}

// Sources is a set of source address ranges.
type Sources []netip.Prefix

// Contains reports whether a is in one of the ranges.
func (s Sources) Contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// MountTargetSources returns the source ranges that the security groups of
// a mount target (as stored now, not as mt was loaded) admit to TCP port
// port: the union of their ingress rules, as EC2 applies several groups. A
// group that no longer exists admits nothing. The answer stays right until
// DataPlaneEpoch moves.
func (s *Service) MountTargetSources(ctx context.Context, mt *MountTarget, port int) (Sources, error) {
	var out Sources
	err := s.store.View(ctx, func(tx Tx) error {
		cur, err := tx.MountTarget(mt.Account, mt.Region, mt.ID)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("load mount target %s: %w", mt.ID, err)
		}
		n, err := tx.Network(mt.Account, mt.Region)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("load network: %w", err)
		}
		for _, id := range cur.SecurityGroups {
			g, ok := n.SecurityGroup(id)
			if !ok {
				continue
			}
			for _, r := range n.Ingress(g) {
				pfx, err := netip.ParsePrefix(r.CIDR)
				if err != nil || !r.AdmitsPort(port) {
					continue
				}
				out = append(out, pfx.Masked())
			}
		}
		return nil
	})
	return out, err
}
