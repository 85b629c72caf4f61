package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"
)

// accessPointEscape: mount an access point, take the handles of its root
// and of a file inside it, forge them (the access point's length byte
// zeroed, with and without truncating the handle to a plain mount's
// length; every byte flipped in turn) and use each forged handle for
// GETATTR, READDIR, LOOKUP ".." and READ. Every forged handle must be
// refused; none may reach the file outside the access point's root.
func (h *harness) accessPointEscape() result {
	r := result{held: true}
	in, t, err := h.startWithMount("ap-escape", efsdOpts{})
	if err != nil {
		r.fail("setup: %v", err)
		return r
	}
	defer in.stop()
	secret := []byte("outside the access point: must never be read through it\n")
	vol := in.volume(devAccount, region, t.fsID)
	if err := os.WriteFile(filepath.Join(vol, "secret.txt"), secret, 0o600); err != nil {
		r.fail("setup: %v", err)
		return r
	}
	c := in.client(devAcct, region)
	ap, err := c.CreateAccessPoint(h.ctx, &efs.CreateAccessPointInput{FileSystemId: aws.String(t.fsID), ClientToken: aws.String("escape"),
		PosixUser: &types.PosixUser{Uid: aws.Int64(1001), Gid: aws.Int64(1001)},
		RootDirectory: &types.RootDirectory{Path: aws.String("/app"),
			CreationInfo: &types.CreationInfo{OwnerUid: aws.Int64(1001), OwnerGid: aws.Int64(1001), Permissions: aws.String("0755")}}})
	if err != nil {
		r.fail("setup: %v", err)
		return r
	}
	rc, err := dialRPC(t.addr, "", 10*time.Second)
	if err != nil {
		r.fail("setup: %v", err)
		return r
	}
	defer func() { rc.Close() }()
	apRoot, err := rc.mount("/" + *ap.AccessPointId)
	if err != nil {
		r.fail("setup: %v", err)
		return r
	}
	inside := []byte("inside the access point\n")
	if err := os.WriteFile(filepath.Join(vol, "app", "inside.txt"), inside, 0o644); err != nil {
		r.fail("setup: %v", err)
		return r
	}
	st, fileFH, err := rc.lookup(apRoot, "inside.txt")
	if err != nil || st != nfsOK {
		r.fail("setup: LOOKUP inside.txt: %v %s", err, nfsStatus(st))
		return r
	}
	// The file system's owner also mounts it whole and looks at the access
	// point's directory, as an administrator does: the server then knows
	// where those files are in the whole file system too.
	admin, err := dialRPC(t.addr, "", 10*time.Second)
	if err != nil {
		r.fail("setup: %v", err)
		return r
	}
	if root, err := admin.mount("/"); err == nil {
		if st, appFH, err := admin.lookup(root, "app"); err == nil && st == nfsOK {
			admin.lookup(appFH, "inside.txt")
		}
	}
	admin.Close()
	// The genuine handles work, and ".." of the root stays at the root.
	if st, names, err := rc.readdir(apRoot); err != nil || st != nfsOK || slices.Contains(names, "secret.txt") {
		r.fail("setup: READDIR of the access point root: %v %s %v", err, nfsStatus(st), names)
		return r
	}

	type forged struct {
		what string
		fh   []byte
		dir  bool
	}
	var all []forged
	for _, base := range []struct {
		what string
		fh   []byte
		dir  bool
	}{{"root", apRoot, true}, {"file", fileFH, false}} {
		if len(base.fh) > 25 {
			z := bytes.Clone(base.fh)
			z[25] = 0
			all = append(all, forged{base.what + ": length byte zeroed", z, base.dir})
			// A plain mount's handle has no access point ID: 26 bytes and
			// zero padding to 28.
			plain := append(bytes.Clone(z[:26]), 0, 0)
			all = append(all, forged{base.what + ": length byte zeroed, truncated to a plain handle", plain, base.dir})
		}
		for i := range base.fh {
			f := bytes.Clone(base.fh)
			f[i] ^= 0xff
			all = append(all, forged{fmt.Sprintf("%s: byte %d flipped", base.what, i), f, base.dir})
		}
		all = append(all, forged{base.what + ": truncated by 4", base.fh[:len(base.fh)-4], base.dir},
			forged{base.what + ": extended by 4", append(bytes.Clone(base.fh), 0, 0, 0, 0), base.dir})
	}
	r.scale = fmt.Sprintf("%d forged handles (of a %d-byte access point handle) × GETATTR, READDIR/LOOKUP ../READ", len(all), len(apRoot))

	accepted, escaped, calls := 0, 0, 0
	statuses := map[string]int{}
	var firstAccepted, firstEscape string
	for _, f := range all {
		if h.check() != nil {
			break
		}
		ok := false // the server accepted the handle for some call
		note := func(what string, st uint32, err error) {
			calls++
			if err != nil {
				statuses["RPC error"]++
				// The server may close the connection on a bad handle: reconnect.
				rc.Close()
				if nc, derr := dialRPC(t.addr, "", 10*time.Second); derr == nil {
					rc = nc
				}
				return
			}
			statuses[nfsStatus(st)]++
			if st == nfsOK {
				ok = true
				if firstAccepted == "" {
					firstAccepted = f.what + " (" + what + ")"
				}
			}
		}
		st, err := rc.getattr(f.fh)
		note("GETATTR", st, err)
		if f.dir {
			st, names, err := rc.readdir(f.fh)
			note("READDIR", st, err)
			if slices.Contains(names, "secret.txt") {
				escaped++
				firstEscape = cmpStr(firstEscape, f.what+": READDIR lists secret.txt")
			}
			st, up, err := rc.lookup(f.fh, "..")
			note("LOOKUP ..", st, err)
			if err == nil && st == nfsOK {
				if st, names, err := rc.readdir(up); err == nil && st == nfsOK && slices.Contains(names, "secret.txt") {
					escaped++
					firstEscape = cmpStr(firstEscape, f.what+": LOOKUP .. then READDIR lists secret.txt")
					if st, sfh, err := rc.lookup(up, "secret.txt"); err == nil && st == nfsOK {
						if st, data, err := rc.read(sfh, 0, 4096); err == nil && st == nfsOK && bytes.Equal(data, secret) {
							firstEscape = f.what + ": LOOKUP .., LOOKUP secret.txt, READ returned the secret"
						}
					}
				}
			}
		} else {
			st, data, err := rc.read(f.fh, 0, 4096)
			note("READ", st, err)
			if bytes.Equal(data, secret) {
				escaped++
				firstEscape = cmpStr(firstEscape, f.what+": READ returned the secret")
			}
		}
		if ok {
			accepted++
		}
	}
	r.fig("%d calls; %d forged handles accepted, %d escaped the access point root; statuses %v", calls, accepted, escaped, statuses)
	if accepted > 0 {
		r.fail("%d forged handles accepted (first: %s)", accepted, firstAccepted)
	}
	if escaped > 0 {
		r.fail("escape: %s", firstEscape)
	}
	if ok, why := in.alive(); !ok {
		r.fail("%s", why)
	}
	return r
}

func cmpStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
