package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecurityGroupRulesInConfig: ingress rules are checked at start-up,
// each error naming the key and the value, and a good rule shows in
// `efsd network` with the sources it admits to the NFS port.
func TestSecurityGroupRulesInConfig(t *testing.T) {
	dir := t.TempDir()
	name := "nfs-clients"
	run := func(rules string) (string, error) {
		cfg := filepath.Join(dir, "efsd.json")
		doc := `{"nfsPort": 2049, "networks": [{"account": "000000000000", "region": "us-east-1",
			"securityGroups": [{"id": "sg-0a1b2c3d4e5f60718", "name": "` + name + `", "ingress": ` + rules + `}]}]}`
		if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		m := &Main{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}
		err := m.Run(context.Background(), []string{"network", "--config", cfg, "--data-dir", dir})
		return out.String(), err
	}
	for rules, want := range map[string]string{
		`[{"cidr": "10.0.0.0/33", "fromPort": 2049, "toPort": 2049}]`:                                         `ingress[0]: cidr "10.0.0.0/33"`,
		`[{"cidr": "nonsense", "fromPort": 2049, "toPort": 2049}]`:                                            `cidr "nonsense"`,
		`[{"cidr": "10.0.0.7/8", "fromPort": 2049, "toPort": 2049}]`:                                          `did you mean 10.0.0.0/8`,
		`[{"cidr": "10.0.0.0/8", "fromPort": 2049, "toPort": 70000}]`:                                         `toPort 70000`,
		`[{"cidr": "10.0.0.0/8", "fromPort": -1, "toPort": 2049}]`:                                            `fromPort -1`,
		`[{"cidr": "10.0.0.0/8", "fromPort": 3000, "toPort": 2049}]`:                                          `fromPort 3000 is above toPort 2049`,
		`[{"cidr": "10.0.0.0/8"}]`:                                                                            `fromPort and toPort are required`,
		`[{"cidr": "10.0.0.0/8", "ipProtocol": "udp", "fromPort": 2049, "toPort": 2049}]`:                     `ipProtocol "udp"`,
		`[{"cidr": "10.0.0.0/8", "fromPort": 2049, "toPort": 2049}, {"cidr": "::1/129", "ipProtocol": "-1"}]`: `(sg-0a1b2c3d4e5f60718) ingress[1]: cidr "::1/129"`,
	} {
		_, err := run(rules)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "networks[0].securityGroups[0]") {
			t.Errorf("rules %s: error %v, want one naming the key and %q", rules, err, want)
		}
	}

	out, err := run(`[{"cidr": "192.168.50.0/24", "fromPort": 2049, "toPort": 2049, "description": "lab"},
		{"cidr": "10.1.0.0/16", "fromPort": 22, "toPort": 22},
		{"cidr": "fd00::/8", "ipProtocol": "-1"}]`)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var n struct {
		VPCs           []struct{ CidrBlock string } `json:"Vpcs"`
		SecurityGroups []struct {
			GroupId, GroupName string
			IpPermissions      []struct {
				IpProtocol       string
				FromPort, ToPort *int
				IpRanges         []struct{ CidrIp, Description string }
				Ipv6Ranges       []struct{ CidrIpv6 string }
			}
			NfsSources []string
		}
	}
	if err := json.Unmarshal([]byte(out), &n); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(n.SecurityGroups) != 2 {
		t.Fatalf("groups: %s", out)
	}
	def, sg := n.SecurityGroups[0], n.SecurityGroups[1]
	// The default group admits its VPC's range and, on loopback, this host.
	if def.GroupName != "default" || strings.Join(def.NfsSources, " ") != n.VPCs[0].CidrBlock+" 127.0.0.1/32" {
		t.Errorf("default group admits %v, want the VPC's range %s and 127.0.0.1/32", def.NfsSources, n.VPCs[0].CidrBlock)
	}
	if sg.GroupId != "sg-0a1b2c3d4e5f60718" || len(sg.IpPermissions) != 3 ||
		sg.IpPermissions[0].IpProtocol != "tcp" || *sg.IpPermissions[0].FromPort != 2049 || sg.IpPermissions[0].IpRanges[0].Description != "lab" ||
		sg.IpPermissions[2].IpProtocol != "-1" || sg.IpPermissions[2].FromPort != nil || sg.IpPermissions[2].Ipv6Ranges[0].CidrIpv6 != "fd00::/8" {
		t.Errorf("declared group: %s", out)
	}
	// Port 22 is not the NFS port.
	if strings.Join(sg.NfsSources, " ") != "192.168.50.0/24 fd00::/8" {
		t.Errorf("declared group admits %v to NFS", sg.NfsSources)
	}

	// A changed declaration replaces the stored rules.
	out, err = run(`[{"cidr": "10.9.0.0/16", "fromPort": 2000, "toPort": 3000}]`)
	if err != nil || json.Unmarshal([]byte(out), &n) != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got := n.SecurityGroups[1].NfsSources; len(got) != 1 || got[0] != "10.9.0.0/16" {
		t.Errorf("after redeclaring, the group admits %v", got)
	}
	// "default" names only the VPC's own default group.
	name = "default"
	if _, err := run(`[]`); err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Errorf("a second group named default: %v", err)
	}
}

// Start-up configuration errors name the key and the value.
func TestConfigPlacementChecked(t *testing.T) {
	for _, tc := range []struct{ json, want string }{
		{`{"nfsPort": 70000}`, "nfsPort 70000"},
		{`{"nfsPort": -1}`, "nfsPort -1"},
		{`{"regions": ["us-east-1", "xx-nowhere-1"]}`, `regions[1] "xx-nowhere-1"`},
		{`{"regions": ["eu-west-1"], "networks": [{"account": "000000000000", "region": "us-east-1"}]}`, `networks[0].region "us-east-1"`},
		{`{"networks": [{"account": "000000000000", "region": "us-east-1", "subnets": [{"id": "subnet-0a1b2c3d4e5f60718", "availabilityZone": "us-east-1a", "cidr": "198.51.100.0/28"}]}]}`,
			"networks[0].subnets[0] (subnet-0a1b2c3d4e5f60718) cidr 198.51.100.0/28 holds no address of this host"},
	} {
		var c FileConfig
		if err := json.Unmarshal([]byte(tc.json), &c); err != nil {
			t.Fatal(err)
		}
		_, err := c.daemonConfig()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one naming %s", tc.json, err, tc.want)
		}
	}
	// What the defaults and this host allow passes.
	var ok FileConfig
	if err := json.Unmarshal([]byte(`{"nfsPort": 2049, "regions": ["ap-southeast-5", "mx-central-1"], "networks": [{"account": "000000000000", "region": "mx-central-1", "subnets": [{"id": "subnet-0a1b2c3d4e5f60718", "availabilityZone": "mx-central-1a", "cidr": "127.250.0.0/28"}]}]}`), &ok); err != nil {
		t.Fatal(err)
	}
	if _, err := ok.daemonConfig(); err != nil {
		t.Fatalf("a valid config refused: %v", err)
	}
}
