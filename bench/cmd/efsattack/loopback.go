package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// loopbackScan: account A's mount target is in a security group that
// admits NFS only from A's VPC range. An attacker with no credentials on
// the same machine connects from 127.0.0.1, outside that range, and tries
// to mount. It must be refused, while a client inside the range mounts.
func (h *harness) loopbackScan() result {
	r := result{held: true, scale: "1 mount target, security group ingress = the VPC's range on the NFS port; attacker from 127.0.0.1"}
	o := efsdOpts{config: map[string]any{"accounts": accountsConfig(accountA)}}
	in, err := h.prepare("loopback-scan", o)
	if err != nil {
		r.fail("setup: %v", err)
		return r
	}
	defer in.stop()
	n, err := in.network(accountA.id, region)
	if err != nil {
		r.fail("setup: %v", err)
		return r
	}
	inside, vpc, err := insideVPC(n.Vpcs[0].CidrBlock)
	if err != nil {
		r.fail("setup: %v", err)
		return r
	}
	const group = "sg-0a77ac0000000001"
	o.config["networks"] = []map[string]any{{"account": accountA.id, "region": region,
		"securityGroups": []map[string]any{{"id": group, "name": "vpc-only-nfs",
			"ingress": []map[string]any{{"cidr": vpc.String(), "fromPort": in.nfsPort, "toPort": in.nfsPort}}}}}}
	if err := in.writeConfig(o.config); err != nil {
		r.fail("setup: %v", err)
		return r
	}
	if err := in.start(o); err != nil {
		if strings.Contains(err.Error(), "unknown field") {
			r.fail("not applicable: this efsd refuses the securityGroups[].ingress config key, so security groups cannot restrict NFS (%s)", lastLine(err.Error()))
		} else {
			r.fail("setup: %v", err)
		}
		return r
	}
	c := in.client(accountA, region)
	fsID, err := in.createFS(c, "guarded")
	if err != nil {
		r.fail("setup: %v", err)
		return r
	}
	t := &nfsTarget{fsID: fsID, content: []byte("account A's data, for its VPC only\n")}
	if err := os.WriteFile(filepath.Join(in.volume(accountA.id, region, fsID), probeFile), t.content, 0o644); err != nil {
		r.fail("setup: %v", err)
		return r
	}
	if t.addr, t.mtID, err = in.mountTarget(c, fsID, n.Subnets[0].SubnetId, group); err != nil {
		r.fail("setup: %v", err)
		return r
	}
	attacker := "127.0.0.1"
	if vpc.Contains(net.ParseIP(attacker)) {
		attacker = "127.255.255.254"
	}
	var outcome string
	rc, err := dialRPC(t.addr, attacker, 3*time.Second)
	if err != nil {
		outcome = "connection refused: " + lastLine(err.Error())
	} else {
		root, err := rc.mount("/")
		if err != nil {
			outcome = "connected, MOUNT refused: " + lastLine(err.Error())
		} else {
			r.fail("an attacker at %s mounted %s's mount target %s", attacker, accountA.id, t.addr)
			if st, fh, err := rc.lookup(root, probeFile); err == nil && st == nfsOK {
				if st, data, err := rc.read(fh, 0, 4096); err == nil && st == nfsOK {
					r.fail("and read %d bytes of account A's data", len(data))
				}
			}
			outcome = "mounted"
		}
		rc.Close()
	}
	r.fig("from %s: %s", attacker, outcome)
	if err := t.mountAndRead(inside, 10*time.Second); err != nil {
		r.fail("a client inside the VPC range (%s) could not mount and read: %v", inside, err)
	} else {
		r.fig("from %s (inside %s): mounted and read", inside, vpc)
	}
	if ok, why := in.alive(); !ok {
		r.fail("%s", why)
	}
	return r
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
