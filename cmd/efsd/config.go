package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"time"

	"github.com/efsd/efsd/internal/api"
	"github.com/efsd/efsd/internal/daemon"
	"github.com/efsd/efsd/internal/efs"
	"github.com/efsd/efsd/internal/peer"
	"github.com/efsd/efsd/internal/region"
)

// FileConfig is the JSON config file. Durations are Go duration strings
// ("500ms", "24h").
type FileConfig struct {
	Listen string `json:"listen"`
	// AdminListen serves /healthz, /readyz and /metrics; empty serves none.
	AdminListen string `json:"adminListen"`
	// AdminProfiling serves Go's profiles at /debug/pprof/ on AdminListen.
	AdminProfiling bool `json:"adminProfiling"`
	// PeerListen accepts replication traffic from the peers (mutual TLS);
	// empty accepts none.
	PeerListen string       `json:"peerListen"`
	Peers      []PeerConfig `json:"peers"`
	DataDir    string       `json:"dataDir"`
	LogFormat  string       `json:"logFormat"`
	LogLevel   string       `json:"logLevel"`
	// Regions limits the served regions; empty serves every AWS commercial
	// region.
	Regions  []string        `json:"regions"`
	Accounts []AccountConfig `json:"accounts"`

	TransitionDelay          string  `json:"transitionDelay"`
	ThroughputCooldown       string  `json:"throughputCooldown"`
	FileSystemQuota          int     `json:"fileSystemQuota"`
	MaxProvisionedThroughput float64 `json:"maxProvisionedThroughputMibps"`
	MeterInterval            string  `json:"meterInterval"`
	ReplicationRescan        string  `json:"replicationRescanInterval"`
	ReplicationScrub         string  `json:"replicationScrubInterval"` // "0" disables`
	NFSPort                  int     `json:"nfsPort"`
	AccessPointQuota         int     `json:"accessPointQuota"`

	// ReplicationMaxWatches caps the inotify watches (one per directory)
	// of one source file system; beyond it changes are found by rescans.
	ReplicationMaxWatches int `json:"replicationMaxWatchesPerFileSystem"`
	// NFS connection limits per mount target: 0 takes the default, -1 turns a cap off.
	NFSMaxConnections          int    `json:"nfsMaxConnections"`
	NFSMaxConnectionsPerClient int    `json:"nfsMaxConnectionsPerClient"`
	NFSMaxLargeCalls           int    `json:"nfsMaxLargeCalls"`
	NFSIdleTimeout             string `json:"nfsIdleTimeout"`
	NFSRecordTimeout           string `json:"nfsRecordTimeout"`
	// Networks adds subnets and security groups to accounts' default VPCs.
	Networks []NetworkConfig `json:"networks"`

	// API listener limits; zero takes api's defaults.
	APIMaxConnections          int    `json:"apiMaxConnections"`
	APIMaxConnectionsPerClient int    `json:"apiMaxConnectionsPerClient"`
	APIBodyMemoryMiB           int    `json:"apiBodyMemoryMiB"`
	APIReadTimeout             string `json:"apiReadTimeout"`
	APIIdleTimeout             string `json:"apiIdleTimeout"`
}

// NetworkConfig declares subnets and security groups of one account in
// one region.
type NetworkConfig struct {
	Account string `json:"account"`
	Region  string `json:"region"`
	Subnets []struct {
		ID               string `json:"id"`
		AvailabilityZone string `json:"availabilityZone"`
		CIDR             string `json:"cidr"`
	} `json:"subnets"`
	SecurityGroups []SecurityGroupConfig `json:"securityGroups"`
}

// SecurityGroupConfig declares a security group and the sources it admits
// to the mount targets it is attached to. Declaring the ID of a VPC's
// default group adds rules to it.
type SecurityGroupConfig struct {
	ID      string          `json:"id"`
	Name    string          `json:"name"`
	Ingress []IngressConfig `json:"ingress"`
}

// IngressConfig is one inbound rule, in the words of EC2's IpPermissions:
// sources in CIDR (IPv4 or IPv6) may connect to ports fromPort-toPort over
// ipProtocol "tcp" (the default), or to every port with "-1". A rule
// admits NFS clients when its ports cover nfsPort.
type IngressConfig struct {
	IPProtocol  string `json:"ipProtocol"`
	FromPort    *int   `json:"fromPort"`
	ToPort      *int   `json:"toPort"`
	CIDR        string `json:"cidr"`
	Description string `json:"description"`
}

var (
	subnetID = regexp.MustCompile(`^subnet-[0-9a-f]{8,40}$`)
	groupID  = regexp.MustCompile(`^sg-[0-9a-f]{8,40}$`)
)

// AccountConfig is one account and its access keys.
type AccountConfig struct {
	ID          string             `json:"id"`
	Credentials []CredentialConfig `json:"credentials"`
}

// CredentialConfig is one access key pair.
type CredentialConfig struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
}

var accountID = regexp.MustCompile(`^\d{12}$`)

// PeerConfig names a deployment serving other regions (issue #10): where
// it accepts replication traffic, what it serves, and the fingerprint of
// its certificate (`efsd peer-id` there prints it).
type PeerConfig struct {
	Name              string   `json:"name"`
	Endpoint          string   `json:"endpoint"`
	Regions           []string `json:"regions"`
	Accounts          []string `json:"accounts"`
	CertificateSHA256 string   `json:"certificateSha256"`
	// NextCertificateSHA256 is pinned too while the peer rotates its
	// identity (`efsd peer-id --rotate` there prints it).
	NextCertificateSHA256 string `json:"nextCertificateSha256"`
}

// LoadFileConfig reads and checks a config file. Unknown keys are errors,
// so a misspelt setting is not silently ignored.
func LoadFileConfig(path string) (*FileConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open config: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	var c FileConfig
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("parse config %s: %w", path, err)
	}
	return &c, nil
}

func (c *FileConfig) daemonConfig() (daemon.Config, error) {
	cfg := daemon.Config{
		Regions:                  c.Regions,
		FileSystemQuota:          c.FileSystemQuota,
		MaxProvisionedThroughput: c.MaxProvisionedThroughput,
		NFSPort:                  c.NFSPort,
		AccessPointQuota:         c.AccessPointQuota,
		APILimits: api.Limits{
			MaxConns:          c.APIMaxConnections,
			MaxConnsPerClient: c.APIMaxConnectionsPerClient,
			BodyMemory:        int64(c.APIBodyMemoryMiB) << 20,
		},
		ReplicationMaxWatchesPerFileSystem: c.ReplicationMaxWatches,
		PeerListen:                         c.PeerListen,
	}
	if len(c.Peers) > 0 && len(c.Regions) == 0 {
		return cfg, fmt.Errorf("config: peers serve other regions, so regions must name this deployment's own")
	}
	if c.PeerListen != "" {
		if _, _, err := net.SplitHostPort(c.PeerListen); err != nil {
			return cfg, fmt.Errorf("config: peerListen %q must be host:port", c.PeerListen)
		}
	}
	for _, p := range c.Peers {
		for _, r := range p.Regions {
			if !region.Default().Has(r) {
				return cfg, fmt.Errorf("config: peer %s: region %q is not an AWS region", p.Name, r)
			}
		}
		pc := peer.Config{Name: p.Name, Endpoint: p.Endpoint, Regions: p.Regions, Accounts: p.Accounts, CertSHA256: p.CertificateSHA256,
			NextCertSHA256: p.NextCertificateSHA256}
		if err := pc.Check(); err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		cfg.Peers = append(cfg.Peers, pc)
	}
	if err := c.checkPlacement(); err != nil {
		return cfg, err
	}
	if c.ReplicationMaxWatches < 0 {
		return cfg, fmt.Errorf("config: replicationMaxWatchesPerFileSystem %d must not be negative", c.ReplicationMaxWatches)
	}
	for _, n := range []struct {
		name string
		v    int
	}{
		{"apiMaxConnections", c.APIMaxConnections},
		{"apiMaxConnectionsPerClient", c.APIMaxConnectionsPerClient},
		{"apiBodyMemoryMiB", c.APIBodyMemoryMiB},
	} {
		if n.v < 0 || n.v > 1<<20 {
			return cfg, fmt.Errorf("config: %s %d must be between 0 (the default) and %d", n.name, n.v, 1<<20)
		}
	}
	cfg.NFSLimits.MaxConns = c.NFSMaxConnections
	cfg.NFSLimits.MaxConnsPerClient = c.NFSMaxConnectionsPerClient
	cfg.NFSLimits.MaxLargeCalls = c.NFSMaxLargeCalls
	for ni, n := range c.Networks {
		if !accountID.MatchString(n.Account) {
			return cfg, fmt.Errorf("config: network account %q must be 12 digits", n.Account)
		}
		d := efs.DeclaredNetwork{Account: n.Account, Region: n.Region}
		for _, sn := range n.Subnets {
			if !subnetID.MatchString(sn.ID) {
				return cfg, fmt.Errorf("config: subnet id %q must look like subnet-0123abcd", sn.ID)
			}
			d.Subnets = append(d.Subnets, efs.DeclaredSubnet{ID: sn.ID, ZoneName: sn.AvailabilityZone, CIDR: sn.CIDR})
		}
		for gi, g := range n.SecurityGroups {
			if !groupID.MatchString(g.ID) {
				return cfg, fmt.Errorf("config: security group id %q must look like sg-0123abcd", g.ID)
			}
			sg := efs.SecurityGroup{ID: g.ID, Name: g.Name}
			for ri, r := range g.Ingress {
				rule, err := ingressRule(r)
				if err != nil {
					return cfg, fmt.Errorf("config: networks[%d].securityGroups[%d] (%s) ingress[%d]: %w", ni, gi, g.ID, ri, err)
				}
				sg.Ingress = append(sg.Ingress, rule)
			}
			d.SecurityGroups = append(d.SecurityGroups, sg)
		}
		cfg.Networks = append(cfg.Networks, d)
	}
	seen := map[string]bool{}
	for _, a := range c.Accounts {
		if !accountID.MatchString(a.ID) {
			return cfg, fmt.Errorf("config: account id %q must be 12 digits", a.ID)
		}
		// An account without keys would leave efsd without credentials,
		// and so on the development credential: refuse it.
		if len(a.Credentials) == 0 {
			return cfg, fmt.Errorf("config: account %s lists no credentials: give it at least one access key, or remove it", a.ID)
		}
		for _, k := range a.Credentials {
			if k.AccessKeyID == "" || k.SecretAccessKey == "" {
				return cfg, fmt.Errorf("config: account %s has a credential without accessKeyId or secretAccessKey", a.ID)
			}
			if seen[k.AccessKeyID] {
				return cfg, fmt.Errorf("config: access key %s is listed twice", k.AccessKeyID)
			}
			seen[k.AccessKeyID] = true
			cfg.Credentials = append(cfg.Credentials, api.Credential{
				AccessKeyID: k.AccessKeyID, SecretAccessKey: k.SecretAccessKey, Account: a.ID})
		}
	}
	for _, d := range []struct {
		name string
		in   string
		out  *time.Duration
	}{
		{"transitionDelay", c.TransitionDelay, &cfg.TransitionDelay},
		{"throughputCooldown", c.ThroughputCooldown, &cfg.ThroughputCooldown},
		{"meterInterval", c.MeterInterval, &cfg.MeterInterval},
		{"replicationRescanInterval", c.ReplicationRescan, &cfg.ReplicationRescanInterval},
		{"replicationScrubInterval", c.ReplicationScrub, &cfg.ReplicationScrubInterval},
		{"apiReadTimeout", c.APIReadTimeout, &cfg.APILimits.ReadTimeout},
		{"apiIdleTimeout", c.APIIdleTimeout, &cfg.APILimits.IdleTimeout},
		{"nfsIdleTimeout", c.NFSIdleTimeout, &cfg.NFSLimits.IdleTimeout},
		{"nfsRecordTimeout", c.NFSRecordTimeout, &cfg.NFSLimits.RecordTimeout},
	} {
		if d.in == "" {
			continue
		}
		v, err := time.ParseDuration(d.in)
		if err != nil || v < 0 {
			return cfg, fmt.Errorf("config: %s %q is not a duration", d.name, d.in)
		}
		*d.out = v
	}
	if c.ReplicationScrub != "" && cfg.ReplicationScrubInterval == 0 {
		cfg.ReplicationScrubInterval = -1 // "0" disables periodic scrubs; unset takes the default
	}
	return cfg, nil
}

// checkPlacement checks where efsd is told to serve: the NFS port, the
// regions, and that declared subnets have addresses on this host (a mount
// target there could never listen otherwise). Errors name the key and value.
func (c *FileConfig) checkPlacement() error {
	if c.NFSPort < 0 || c.NFSPort > 65535 {
		return fmt.Errorf("config: nfsPort %d must be between 1 and 65535 (0 or absent means 2049)", c.NFSPort)
	}
	known := region.Default()
	for i, r := range c.Regions {
		if !known.Has(r) {
			return fmt.Errorf("config: regions[%d] %q is not a region where EFS is offered", i, r)
		}
	}
	served := known
	if len(c.Regions) > 0 {
		served = known.Restrict(c.Regions)
	}
	var local []netip.Addr
	for ni, n := range c.Networks {
		if !served.Has(n.Region) {
			return fmt.Errorf("config: networks[%d].region %q is not a served region", ni, n.Region)
		}
		for si, sn := range n.Subnets {
			p, err := netip.ParsePrefix(sn.CIDR)
			if err != nil {
				return fmt.Errorf("config: networks[%d].subnets[%d] (%s) cidr %q: %w", ni, si, sn.ID, sn.CIDR, err)
			}
			if p.Addr().IsLoopback() {
				continue // every 127.x address is this host's
			}
			if local == nil {
				if local, err = hostAddrs(); err != nil {
					return fmt.Errorf("config: list this host's addresses: %w", err)
				}
			}
			if !slices.ContainsFunc(local, p.Contains) {
				return fmt.Errorf("config: networks[%d].subnets[%d] (%s) cidr %s holds no address of this host: mount targets there could not listen (assign one of its addresses to an interface)", ni, si, sn.ID, sn.CIDR)
			}
		}
	}
	return nil
}

// hostAddrs lists the addresses assigned to this host's interfaces.
func hostAddrs() ([]netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out, nil
}

// ingressRule checks a configured rule: tcp needs both ports.
func ingressRule(r IngressConfig) (efs.IngressRule, error) {
	rule := efs.IngressRule{Protocol: first(r.IPProtocol, efs.ProtocolTCP), CIDR: r.CIDR, Description: r.Description}
	if r.FromPort != nil {
		rule.FromPort = *r.FromPort
	}
	if r.ToPort != nil {
		rule.ToPort = *r.ToPort
	}
	rule, err := efs.CheckIngressRule(rule)
	if err != nil {
		return rule, err
	}
	if rule.Protocol == efs.ProtocolTCP && (r.FromPort == nil || r.ToPort == nil) {
		return rule, fmt.Errorf("fromPort and toPort are required for tcp (the NFS port, e.g. 2049, or a range holding it)")
	}
	return rule, nil
}
