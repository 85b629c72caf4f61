#!/usr/bin/env bash
# End-to-end: build the real efsd, start it on its embedded defaults (with
# a throwaway data directory and port), and drive it with the AWS CLI and
# boto3. Exits non-zero on the first surprise.
set -euo pipefail

cd "$(dirname "$0")/.."
. scripts/efsd-lib.sh
start_efsd
fail() { echo "e2e: FAIL: $*" >&2; cat "$work/efsd.log" >&2; exit 1; }
wait_efsd

passed=0
ok() { passed=$((passed + 1)); echo "e2e: ok - $*"; }

# create → describe → tag → update protection → delete
id=$(efs create-file-system --creation-token e2e --tags Key=Name,Value=e2e | python3 -c 'import json,sys; print(json.load(sys.stdin)["FileSystemId"])')
[[ $id =~ ^fs-[0-9a-f]{17}$ ]] || fail "bad id $id"
ok "create-file-system $id"

state=""
for _ in $(seq 100); do
	state=$(efs describe-file-systems --file-system-id "$id" --query 'FileSystems[0].LifeCycleState' --output text)
	[ "$state" = available ] && break
	sleep 0.1
done
[ "$state" = available ] || fail "state $state"
ok "describe-file-systems: available"

efs tag-resource --resource-id "$id" --tags Key=env,Value=e2e
[ "$(efs list-tags-for-resource --resource-id "$id" --query 'length(Tags)' --output text)" = 2 ] || fail "tags"
ok "tag-resource / list-tags-for-resource"

[ "$(efs update-file-system-protection --file-system-id "$id" --replication-overwrite-protection DISABLED --query ReplicationOverwriteProtection --output text)" = DISABLED ] || fail "protection"
ok "update-file-system-protection"

# An error decoded to its code by the CLI.
if out=$(efs describe-file-systems --file-system-id fs-0123456789abcdef0 2>&1); then fail "describe of a missing file system succeeded"; fi
grep -q "(FileSystemNotFound)" <<<"$out" || fail "unexpected error: $out"
ok "error decoded: FileSystemNotFound"

efs delete-file-system --file-system-id "$id"
gone=""
for _ in $(seq 100); do
	if ! efs describe-file-systems --file-system-id "$id" >/dev/null 2>&1; then gone=yes; break; fi
	sleep 0.1
done
[ -n "$gone" ] || fail "file system not deleted"
ok "delete-file-system"

# boto3: every modeled error arrives as its typed exception.
python3 - <<'PY' || fail "boto3 checks"
import os, boto3, botocore
c = boto3.client("efs", endpoint_url=os.environ["EFSD_ENDPOINT"], region_name="us-east-1")
fs = c.create_file_system(CreationToken="boto3")
try:
    c.create_file_system(CreationToken="boto3")
    raise SystemExit("duplicate token accepted")
except c.exceptions.FileSystemAlreadyExists as e:
    assert e.response["FileSystemId"] == fs["FileSystemId"], e.response
    assert e.response["ErrorCode"] == "FileSystemAlreadyExists", e.response
import time
for _ in range(100):
    if c.describe_file_systems(FileSystemId=fs["FileSystemId"])["FileSystems"][0]["LifeCycleState"] == "available":
        break
    time.sleep(0.1)
missing = "fs-0123456789abcdef0"
for call, exc in [
    (lambda: c.describe_file_systems(FileSystemId=missing), c.exceptions.FileSystemNotFound),
    (lambda: c.describe_replication_configurations(FileSystemId=fs["FileSystemId"]), c.exceptions.ReplicationNotFound),
    (lambda: c.delete_replication_configuration(SourceFileSystemId=missing), c.exceptions.FileSystemNotFound),
    (lambda: c.describe_mount_targets(MountTargetId="fsmt-0123456789abcdef0"), c.exceptions.MountTargetNotFound),
    (lambda: c.describe_access_points(AccessPointId="fsap-0123456789abcdef0"), c.exceptions.AccessPointNotFound),
    (lambda: c.create_mount_target(FileSystemId=fs["FileSystemId"], SubnetId="subnet-0123456789abcdef0"), c.exceptions.SubnetNotFound),
    (lambda: c.create_file_system(CreationToken="mars", AvailabilityZoneName="mars-1a"), c.exceptions.UnsupportedAvailabilityZone),
    (lambda: c.create_file_system(CreationToken="tp", ThroughputMode="provisioned", ProvisionedThroughputInMibps=99999.0), c.exceptions.ThroughputLimitExceeded),
    (lambda: c.create_replication_configuration(SourceFileSystemId=fs["FileSystemId"], Destinations=[]), c.exceptions.BadRequest),
    (lambda: c.delete_access_point(AccessPointId="fsap-0123456789abcdef0"), c.exceptions.AccessPointNotFound),
    (lambda: c.describe_file_systems(FileSystemId="not-an-id"), c.exceptions.ValidationException),
    (lambda: c.describe_file_system_policy(FileSystemId=fs["FileSystemId"]), c.exceptions.PolicyNotFound),
    (lambda: c.put_file_system_policy(FileSystemId=fs["FileSystemId"], Policy="{}"), c.exceptions.InvalidPolicyException),
]:
    try:
        call()
        raise SystemExit("call succeeded")
    except exc as e:
        assert e.response["ResponseMetadata"]["RequestId"], e.response
        assert e.response["Error"]["Message"], e.response
bad = boto3.client("efs", endpoint_url=os.environ["EFSD_ENDPOINT"], region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="wrong")
try:
    bad.describe_file_systems()
    raise SystemExit("wrong secret accepted")
except botocore.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "InvalidSignatureException", e.response
print("boto3 ok")
PY
ok "boto3 typed exceptions"

# Replication with the CLI: a file written into the source shows up in the
# destination, and the status and timestamp say so.
wait_available() {
	for _ in $(seq 100); do
		[ "$(efs describe-file-systems --file-system-id "$1" --query 'FileSystems[0].LifeCycleState' --output text)" = available ] && return 0
		sleep 0.1
	done
	return 1
}
src=$(efs create-file-system --creation-token e2e-src --encrypted --query FileSystemId --output text)
wait_available "$src" || fail "source not available"
vol="$work/data/volumes/000000000000/us-east-1"
mkdir -p "$vol/$src/dir" && echo "replicated by efsd" >"$vol/$src/dir/hello.txt"
dst=$(efs create-replication-configuration --source-file-system-id "$src" --destinations Region=us-east-1 \
	--query 'Destinations[0].FileSystemId' --output text)
[[ $dst =~ ^fs- ]] || fail "no destination id: $dst"
status=""
for _ in $(seq 200); do
	status=$(efs describe-replication-configurations --file-system-id "$src" \
		--query 'Replications[0].Destinations[0].[Status,LastReplicatedTimestamp]' --output text)
	[[ $status == ENABLED* && $status != *None ]] && cmp -s "$vol/$src/dir/hello.txt" "$vol/$dst/dir/hello.txt" && break
	sleep 0.1
done
cmp -s "$vol/$src/dir/hello.txt" "$vol/$dst/dir/hello.txt" || fail "file not replicated (status $status)"
ok "create-replication-configuration: ENABLED, file replicated"
[ "$(efs describe-file-systems --file-system-id "$dst" --query 'FileSystems[0].FileSystemProtection.ReplicationOverwriteProtection' --output text)" = REPLICATING ] || fail "destination protection"
efs delete-replication-configuration --source-file-system-id "$src"
gone=""
for _ in $(seq 100); do
	if out=$(efs describe-replication-configurations --file-system-id "$src" 2>&1); then sleep 0.1; continue; fi
	grep -q "(ReplicationNotFound)" <<<"$out" && gone=yes && break
	fail "unexpected error: $out"
done
[ -n "$gone" ] || fail "replication configuration not deleted"
[ "$(efs describe-file-systems --file-system-id "$dst" --query 'FileSystems[0].FileSystemProtection.ReplicationOverwriteProtection' --output text)" = ENABLED ] || fail "destination still protected"
ok "delete-replication-configuration: gone, destination writable, data kept"

# EC2's view of the network, on the same endpoint: the subnet of a zone,
# a mount target's network interface, EC2's error codes.
subnet() {
	ec2 describe-subnets --filters "Name=availability-zone,Values=us-east-1$1" Name=default-for-az,Values=true \
		--query 'Subnets[0].SubnetId' --output text
}
sub_a=$(subnet a)
[[ $sub_a =~ ^subnet-[0-9a-f]{17}$ ]] || fail "describe-subnets: $sub_a"
ok "ec2 describe-subnets: $sub_a in us-east-1a"
[ "$(ec2 describe-vpcs --filters Name=is-default,Values=true --query 'length(Vpcs)' --output text)" = 1 ] || fail "describe-vpcs"
[ "$(ec2 describe-security-groups --group-names default --query 'SecurityGroups[0].GroupName' --output text)" = default ] || fail "describe-security-groups"
ok "ec2 describe-vpcs / describe-security-groups"
if out=$(ec2 describe-subnets --subnet-ids subnet-0123456789abcdef0 2>&1); then fail "describe-subnets of a missing subnet succeeded"; fi
grep -q "(InvalidSubnetID.NotFound)" <<<"$out" || fail "unexpected error: $out"
ok "ec2 error decoded: InvalidSubnetID.NotFound"
e=$(efs create-file-system --creation-token ec2-eni --query FileSystemId --output text)
wait_available "$e" || fail "file system $e not available"
read -r emt eni < <(efs create-mount-target --file-system-id "$e" --subnet-id "$sub_a" --query '[MountTargetId,NetworkInterfaceId]' --output text)
read -r eni_sub eni_desc < <(ec2 describe-network-interfaces --network-interface-ids "$eni" \
	--query 'NetworkInterfaces[0].[SubnetId,Description]' --output text)
[ "$eni_sub" = "$sub_a" ] || fail "network interface $eni: subnet $eni_sub, want $sub_a"
[ "$eni_desc" = "EFS mount target for $e ($emt)" ] || fail "network interface $eni: description $eni_desc"
ok "ec2 describe-network-interfaces: $eni of $emt"
sg=$(ec2 create-security-group --group-name nfs-e2e --description "NFS clients" --query GroupId --output text)
ec2 authorize-security-group-ingress --group-id "$sg" --protocol tcp --port 2049 --cidr 10.0.0.0/8 >/dev/null
[ "$(ec2 describe-security-groups --group-ids "$sg" --query 'SecurityGroups[0].IpPermissions[0].IpRanges[0].CidrIp' --output text)" = 10.0.0.0/8 ] \
	|| fail "security group $sg: rule not described"
efs modify-mount-target-security-groups --mount-target-id "$emt" --security-groups "$sg"
if out=$(ec2 delete-security-group --group-id "$sg" 2>&1); then fail "deleted a group a mount target names"; fi
grep -q "(DependencyViolation)" <<<"$out" || fail "unexpected error: $out"
ok "ec2 create-security-group / authorize-security-group-ingress: $sg on $emt"

# NFS with a client nobody here wrote (libnfs): write through a mount
# target, replicate, read through the destination's mount target, and be
# refused a write there.
if command -v nfs-cp >/dev/null; then
	mt_ip() {
		local id ip state
		id=$(efs create-mount-target --file-system-id "$1" --subnet-id "$(subnet "$2")" --query MountTargetId --output text)
		for _ in $(seq 100); do
			read -r state ip < <(efs describe-mount-targets --mount-target-id "$id" --query 'MountTargets[0].[LifeCycleState,IpAddress]' --output text)
			[ "$state" = available ] && echo "$ip" && return 0
			sleep 0.1
		done
		return 1
	}
	# libnfs takes what precedes the last slash as the export: "//file" is file at the root export "/".
	nfsurl() { echo "nfs://$1/${2:+/$2}?version=3&nfsport=$nfsport&mountport=$nfsport"; }
	a=$(efs create-file-system --creation-token nfs-a --encrypted --query FileSystemId --output text)
	wait_available "$a" || fail "nfs source not available"
	a_ip=$(mt_ip "$a" b) || fail "mount target of $a not available"
	ok "create-mount-target: $a at $a_ip"
	head -c 3000000 /dev/urandom >"$work/payload"
	nfs-cp "$work/payload" "$(nfsurl "$a_ip" payload.bin)" >/dev/null || fail "nfs-cp into $a"
	nfs-ls "$(nfsurl "$a_ip" "")" | grep -q payload.bin || fail "nfs-ls does not list the file"
	cmp -s "$work/payload" "$vol/$a/payload.bin" || fail "file written over NFS differs on disk"
	ok "nfs-cp / nfs-ls through the mount target"
	b=$(efs create-replication-configuration --source-file-system-id "$a" --destinations Region=us-east-1 \
		--query 'Destinations[0].FileSystemId' --output text)
	wait_available "$b" || fail "destination not available"
	b_ip=$(mt_ip "$b" c) || fail "mount target of $b not available"
	copied=""
	for _ in $(seq 200); do
		if nfs-cp "$(nfsurl "$b_ip" payload.bin)" "$work/back" >/dev/null 2>&1 && cmp -s "$work/payload" "$work/back"; then copied=yes; break; fi
		sleep 0.1
	done
	[ -n "$copied" ] || fail "replicated file not readable over NFS at the destination"
	ok "replicated file read back over NFS from the destination"
	if nfs-cp "$work/payload" "$(nfsurl "$b_ip" intruder.bin)" >/dev/null 2>&1; then fail "NFS write to a replication destination succeeded"; fi
	[ ! -e "$vol/$b/intruder.bin" ] || fail "intruder file landed on the destination"
	ok "NFS write to the destination refused"
elif [ "${CI:-}" = true ]; then
	fail "libnfs-utils (nfs-cp) is not installed"
else
	echo "e2e: libnfs-utils not installed; skipping the NFS checks" >&2
fi

# Replication between two deployments (issue #10), with the AWS CLI: a
# (us-east-1) and b (eu-west-1), each its own efsd process and data
# directory, peers by pinned certificate fingerprints.
cross_deployment() {
	local name fp_a fp_b pid_a pid_b src dst vol_a vol_b status out gone side
	xfail() { echo "e2e: FAIL (cross-deployment): $*" >&2; tail -n 40 "$work"/a.log "$work"/b.log >&2 || true; exit 1; }
	for name in a b; do
		eval "port_$name=\$(freeport) nfs_$name=\$(freeport) peer_$name=\$(freeport)"
	done
	fp_a=$("$work/efsd" peer-id --data-dir "$work/a") || xfail "efsd peer-id (a)"
	fp_b=$("$work/efsd" peer-id --data-dir "$work/b") || xfail "efsd peer-id (b)"
	[[ $fp_a =~ ^[0-9a-f]{64}$ && $fp_b =~ ^[0-9a-f]{64}$ && $fp_a != "$fp_b" ]] || xfail "peer-id printed '$fp_a' and '$fp_b'"
	[ "$("$work/efsd" peer-id --data-dir "$work/a")" = "$fp_a" ] || xfail "peer-id of a changed"
	ok "efsd peer-id: a $fp_a, b $fp_b"
	cat >"$work/a.json" <<-EOF
	{"nfsPort": $nfs_a, "regions": ["us-east-1"], "replicationRescanInterval": "1s", "peerListen": "127.0.0.1:$peer_a",
	 "peers": [{"name": "b", "endpoint": "https://127.0.0.1:$peer_b", "regions": ["eu-west-1"], "certificateSha256": "$fp_b"}]}
	EOF
	cat >"$work/b.json" <<-EOF
	{"nfsPort": $nfs_b, "regions": ["eu-west-1"], "replicationRescanInterval": "1s", "peerListen": "127.0.0.1:$peer_b",
	 "peers": [{"name": "a", "endpoint": "https://127.0.0.1:$peer_a", "regions": ["us-east-1"], "certificateSha256": "$fp_a"}]}
	EOF
	"$work/efsd" --listen "127.0.0.1:$port_b" --data-dir "$work/b" --config "$work/b.json" >"$work/b.log" 2>&1 &
	pid_b=$!
	"$work/efsd" --listen "127.0.0.1:$port_a" --data-dir "$work/a" --config "$work/a.json" >"$work/a.log" 2>&1 &
	pid_a=$!
	# Stop both on every exit path, as cleanup does the main efsd.
	# shellcheck disable=SC2064 # the PIDs are meant to be expanded now
	trap "kill $pid_a $pid_b 2>/dev/null; cleanup" EXIT
	for name in a b; do
		for _ in $(seq 100); do grep -q "listening on" "$work/$name.log" 2>/dev/null && break; sleep 0.1; done
		grep -q "listening on" "$work/$name.log" || xfail "deployment $name did not start"
	done
	efs_a() { aws efs --endpoint-url "http://127.0.0.1:$port_a" --region us-east-1 --output json "$@"; }
	efs_b() { aws efs --endpoint-url "http://127.0.0.1:$port_b" --region eu-west-1 --output json "$@"; }

	src=$(efs_a create-file-system --creation-token cross --encrypted --query FileSystemId --output text)
	for _ in $(seq 100); do
		[ "$(efs_a describe-file-systems --file-system-id "$src" --query 'FileSystems[0].LifeCycleState' --output text)" = available ] && break
		sleep 0.1
	done
	vol_a="$work/a/volumes/000000000000/us-east-1/$src"
	mkdir -p "$vol_a/dir" && echo "crossed over" >"$vol_a/dir/hello.txt"
	dst=$(efs_a create-replication-configuration --source-file-system-id "$src" --destinations Region=eu-west-1 \
		--query 'Destinations[0].FileSystemId' --output text) || xfail "create-replication-configuration at a"
	[[ $dst =~ ^fs-[0-9a-f]{17}$ ]] || xfail "no destination id: $dst"
	vol_b="$work/b/volumes/000000000000/eu-west-1/$dst"
	status=""
	for _ in $(seq 300); do
		status=$(efs_a describe-replication-configurations --file-system-id "$src" \
			--query 'Replications[0].Destinations[0].[Status,LastReplicatedTimestamp]' --output text)
		[[ $status == ENABLED* && $status != *None ]] && cmp -s "$vol_a/dir/hello.txt" "$vol_b/dir/hello.txt" && break
		sleep 0.1
	done
	cmp -s "$vol_a/dir/hello.txt" "$vol_b/dir/hello.txt" || xfail "file not replicated to b (status at a: $status)"
	ok "create-replication-configuration at a: ENABLED, $src replicated to $dst at b"
	[ "$(efs_b describe-replication-configurations --file-system-id "$dst" --query 'Replications[0].SourceFileSystemId' --output text)" = "$src" ] \
		|| xfail "b does not describe the configuration of $dst"
	[ "$(efs_b describe-file-systems --file-system-id "$dst" --query 'FileSystems[0].FileSystemProtection.ReplicationOverwriteProtection' --output text)" = REPLICATING ] \
		|| xfail "destination at b not REPLICATING"
	ok "describe at b: $dst replicating from $src"

	# Terraform's order: delete at the destination's region with the source's ID.
	efs_b delete-replication-configuration --source-file-system-id "$src" || xfail "delete-replication-configuration at b"
	for side in a b; do
		gone=""
		for _ in $(seq 300); do
			if [ $side = a ]; then out=$(efs_a describe-replication-configurations --file-system-id "$src" 2>&1) && { sleep 0.1; continue; }
			else out=$(efs_b describe-replication-configurations --file-system-id "$dst" 2>&1) && { sleep 0.1; continue; }; fi
			grep -q "(ReplicationNotFound)" <<<"$out" && gone=yes && break
			xfail "unexpected error at $side: $out"
		done
		[ -n "$gone" ] || xfail "configuration still described at $side"
	done
	[ "$(efs_b describe-file-systems --file-system-id "$dst" --query 'FileSystems[0].FileSystemProtection.ReplicationOverwriteProtection' --output text)" = ENABLED ] \
		|| xfail "destination at b still protected"
	cmp -s "$vol_a/dir/hello.txt" "$vol_b/dir/hello.txt" || xfail "destination lost its data"
	ok "delete-replication-configuration at b with the source's ID: gone at both, b writable, data kept"

	kill -TERM "$pid_a" "$pid_b"
	wait "$pid_a" || xfail "a exited non-zero on SIGTERM"
	wait "$pid_b" || xfail "b exited non-zero on SIGTERM"
	trap cleanup EXIT
	ok "both deployments shut down cleanly"
}
cross_deployment

kill -TERM "$pid"
wait "$pid" || fail "efsd exited non-zero on SIGTERM"
pid=""
ok "clean shutdown on SIGTERM"
echo "e2e: $passed passed, 0 failed"
