package efs

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
)

// Network is an account's network in one region, as EFS sees it: VPCs,
// their subnets (one availability zone each) and security groups. Every
// account and region gets a default VPC with one subnet per zone and a
// default security group, made on first use. Subnets hand out addresses
// in the loopback range, so every mount target listens on an address of
// its own on this machine.
type Network struct {
	VPCs           []VPC
	Subnets        []Subnet
	SecurityGroups []SecurityGroup
}

// VPC is a virtual network.
type VPC struct {
	ID      string
	CIDR    string
	Default bool
}

// Subnet is a range of addresses of a VPC in one availability zone.
type Subnet struct {
	ID       string
	VPCID    string
	ZoneName string
	ZoneID   string
	CIDR     string
}

// SecurityGroup is a named group of a VPC. Its ingress rules decide which
// source addresses may connect to the NFS port of the mount targets it is
// attached to; a group without rules admits nothing, as in EC2. The
// default group of a VPC also admits the VPC's own ranges (see Ingress).
type SecurityGroup struct {
	ID      string
	VPCID   string
	Name    string
	Ingress []IngressRule `json:",omitempty"`
	// Description is set for groups made through EC2's CreateSecurityGroup.
	Description string `json:",omitempty"`
	// Egress is the outbound rules of a group made through EC2's API (all
	// traffic anywhere at first, as in EC2). They are kept and shown, and
	// restrict nothing: mount targets only answer connections.
	Egress []IngressRule `json:",omitempty"`
	// API marks a group made through EC2's API: the API may delete it, and
	// a config-file declaration of the same ID is refused.
	API bool `json:",omitempty"`
}

// Subnet finds a subnet by ID.
func (n *Network) Subnet(id string) (Subnet, bool) {
	for _, s := range n.Subnets {
		if s.ID == id {
			return s, true
		}
	}
	return Subnet{}, false
}

// SecurityGroup finds a security group by ID.
func (n *Network) SecurityGroup(id string) (SecurityGroup, bool) {
	for _, g := range n.SecurityGroups {
		if g.ID == id {
			return g, true
		}
	}
	return SecurityGroup{}, false
}

// DefaultSecurityGroup is the default group of a VPC.
func (n *Network) DefaultSecurityGroup(vpcID string) (SecurityGroup, bool) {
	for _, g := range n.SecurityGroups {
		if g.VPCID == vpcID && g.Name == "default" {
			return g, true
		}
	}
	return SecurityGroup{}, false
}

// vpcBlocks is how many /20 blocks of 127.0.0.0/8 default VPCs can take;
// block 0 holds 127.0.0.1 and is never used.
const vpcBlocks = 4096

// network returns p's network, making the default one on first use. The
// n-th default VPC of a data directory takes block k = (n-1+VPCBlockOffset)
// mod 4095 + 1, that is 127.A.B.0/20 (A = k/16, B = k%16*16), and its subnet
// for the i-th zone 127.A.(B+i).0/24.
func (s *Service) network(tx Tx, account, region string) (*Network, error) {
	n, err := tx.Network(account, region)
	if err == nil {
		return n, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("load network: %w", err)
	}
	seq, err := tx.NextVPCBlock()
	if err != nil {
		return nil, fmt.Errorf("allocate address block: %w", err)
	}
	if seq <= 0 || seq >= vpcBlocks {
		return nil, E(InternalServerError, "no loopback address block left for a default VPC")
	}
	block := (seq-1+s.cfg.VPCBlockOffset)%(vpcBlocks-1) + 1
	a, b := block/16, block%16*16
	vpc := VPC{ID: "vpc-" + s.ids.Hex(longIDDigits), CIDR: fmt.Sprintf("127.%d.%d.0/20", a, b), Default: true}
	n = &Network{VPCs: []VPC{vpc}}
	for i, z := range s.cfg.Regions.Zones(region) {
		if i >= 16 {
			break
		}
		n.Subnets = append(n.Subnets, Subnet{ID: "subnet-" + s.ids.Hex(longIDDigits), VPCID: vpc.ID,
			ZoneName: z.Name, ZoneID: z.ID, CIDR: fmt.Sprintf("127.%d.%d.0/24", a, b+i)})
	}
	n.SecurityGroups = []SecurityGroup{{ID: "sg-" + s.ids.Hex(longIDDigits), VPCID: vpc.ID, Name: "default"}}
	if err := tx.PutNetwork(account, region, n); err != nil {
		return nil, fmt.Errorf("save network: %w", err)
	}
	return n, nil
}

// DescribeNetwork returns p's network (for the `efsd network` command).
func (s *Service) DescribeNetwork(ctx context.Context, p Principal) (*Network, error) {
	var n *Network
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		n, err = s.network(tx, p.Account, p.Region)
		return err
	})
	return n, err
}

// DeclaredSubnet is a subnet from the config file.
type DeclaredSubnet struct {
	ID       string
	ZoneName string
	CIDR     string
}

// DeclaredNetwork adds config-file subnets and security groups to an
// account's default VPC in a region.
type DeclaredNetwork struct {
	Account        string
	Region         string
	Subnets        []DeclaredSubnet
	SecurityGroups []SecurityGroup // VPCID ignored: they join the default VPC; Ingress checked by CheckIngressRule
}

// DeclareNetwork records subnets and security groups from the config file,
// replacing earlier declarations with the same IDs (a group's name and
// ingress rules included). A group declared earlier and left out now is
// kept, with its last rules, because mount targets may still name it.
func (s *Service) DeclareNetwork(ctx context.Context, d DeclaredNetwork) error {
	err := s.store.Update(ctx, func(tx Tx) error {
		n, err := s.network(tx, d.Account, d.Region)
		if err != nil {
			return err
		}
		vpc := n.VPCs[0].ID
		for _, ds := range d.Subnets {
			z, ok := s.cfg.Regions.Zone(d.Region, ds.ZoneName)
			if !ok {
				return fmt.Errorf("subnet %s: zone %q is not in %s", ds.ID, ds.ZoneName, d.Region)
			}
			if _, err := netip.ParsePrefix(ds.CIDR); err != nil {
				return fmt.Errorf("subnet %s: cidr: %w", ds.ID, err)
			}
			sub := Subnet{ID: ds.ID, VPCID: vpc, ZoneName: z.Name, ZoneID: z.ID, CIDR: ds.CIDR}
			replaced := false
			for i := range n.Subnets {
				if n.Subnets[i].ID == ds.ID {
					n.Subnets[i], replaced = sub, true
				}
			}
			if !replaced {
				n.Subnets = append(n.Subnets, sub)
			}
		}
		def, _ := n.DefaultSecurityGroup(vpc)
		for _, g := range d.SecurityGroups {
			g.VPCID = vpc
			rules := make([]IngressRule, 0, len(g.Ingress))
			for i, r := range g.Ingress {
				r, err := CheckIngressRule(r)
				if err != nil {
					return fmt.Errorf("security group %s: ingress[%d]: %w", g.ID, i, err)
				}
				rules = append(rules, r)
			}
			g.Ingress = rules
			switch {
			case g.ID == def.ID && def.ID != "":
				// Rules declared for the default group add to the VPC's own
				// ranges; its name stays.
				g.Name = def.Name
			case g.Name == "default":
				return fmt.Errorf("security group %s: the name %q is reserved for the VPC's default group", g.ID, g.Name)
			}
			replaced := false
			for i := range n.SecurityGroups {
				if n.SecurityGroups[i].ID == g.ID && n.SecurityGroups[i].API {
					return fmt.Errorf("security group %s was made through EC2's API; declare a group of your own", g.ID)
				}
				if n.SecurityGroups[i].ID == g.ID {
					n.SecurityGroups[i], replaced = g, true
				}
			}
			if !replaced {
				n.SecurityGroups = append(n.SecurityGroups, g)
			}
		}
		return tx.PutNetwork(d.Account, d.Region, n)
	})
	if err == nil {
		s.dataPlaneChanged() // mount targets admit by these groups' rules
	}
	return err
}

// NetworkInterfaces returns p's network (made on first use) and the mount
// targets of p that still hold a network interface, in creation order: what
// EC2's DescribeNetworkInterfaces shows of EFS.
func (s *Service) NetworkInterfaces(ctx context.Context, p Principal) (*Network, []*MountTarget, error) {
	var (
		n   *Network
		mts []*MountTarget
	)
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		if n, err = s.network(tx, p.Account, p.Region); err != nil {
			return err
		}
		all, err := tx.AllMountTargets()
		if err != nil {
			return fmt.Errorf("list mount targets: %w", err)
		}
		for _, mt := range all {
			if mt.Account == p.Account && mt.Region == p.Region && mt.ENI != "" {
				mts = append(mts, mt)
			}
		}
		return nil
	})
	return n, mts, err
}
