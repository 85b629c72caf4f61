#!/usr/bin/env bash
# Terraform end to end: build the real efsd, start it on a throwaway data
# directory and port, and apply, re-plan, import and destroy
# examples/terraform/ with the hashicorp/aws provider from a local
# filesystem mirror (never downloaded). Skips, saying so, only where
# terraform or the provider is absent.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)

if ! command -v terraform >/dev/null; then
	echo "terraform: SKIP: terraform not installed" >&2
	exit 0
fi
# The mirror's root is the directory above registry.terraform.io/hashicorp/aws/<version>/<platform>/.
provider=$(find / \( -path /proc -o -path /sys \) -prune -o -name 'terraform-provider-aws*' -type f -print 2>/dev/null \
	| grep '/registry.terraform.io/hashicorp/aws/[^/]*/[^/]*/terraform-provider-aws[^/]*$' | head -n 1 || true)
if [ -z "$provider" ]; then
	echo "terraform: SKIP: hashicorp/aws provider not found in a filesystem mirror" >&2
	exit 0
fi
mirror=${provider%/registry.terraform.io/hashicorp/aws/*}

. scripts/efsd-lib.sh
start_efsd
endpoint="$EFSD_ENDPOINT"

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "terraform: ok - $*"; }
fail() {
	failed=$((failed + 1))
	echo "terraform: FAIL: $*" >&2
	echo "--- efsd log (tail)" >&2
	tail -n 50 "$work/efsd.log" >&2
	echo "terraform: $passed passed, $failed failed"
	exit 1
}
wait_efsd

# Terraform, offline: the provider from the mirror, no checkpoint calls,
# a copy of the example so that no state lands in the tree.
cat >"$work/terraformrc" <<CFG
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/hashicorp/aws"]
  }
  direct {
    exclude = ["registry.terraform.io/hashicorp/aws"]
  }
}
CFG
export TF_CLI_CONFIG_FILE="$work/terraformrc" CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0
export TF_VAR_endpoint="$endpoint"
unset TF_WORKSPACE TF_DATA_DIR
cp -r examples/terraform "$work/tf"
rm -rf "$work/tf/.terraform" "$work/tf"/terraform.tfstate* "$work/tf/.terraform.lock.hcl"
# tf <seconds> <args…>: terraform with a bound on its run time, output kept.
tf() {
	local secs=$1
	shift
	timeout --kill-after=10 "$secs" terraform -chdir="$work/tf" "$@" -no-color >"$work/tf.out" 2>&1
}
show() { tail -n 40 "$work/tf.out" >&2; }

tf 120 init -input=false || { show; fail "terraform init (provider mirror $mirror)"; }
ok "init: hashicorp/aws from $mirror"

tf 300 apply -auto-approve -input=false || { show; fail "terraform apply"; }
ok "apply: $(grep -o 'Apply complete!.*' "$work/tf.out")"

out() { terraform -chdir="$work/tf" output -raw "$1"; }
fs=$(out file_system_id)
mt=$(out mount_target_id)
ap=$(out access_point_id)
replica=$(out replica_file_system_id)
existing=$(out existing_destination_file_system_id)
[ "$(efs describe-mount-targets --mount-target-id "$mt" --query 'MountTargets[0].LifeCycleState' --output text)" = available ] \
	|| fail "mount target $mt not available"
[ "$(efs describe-access-points --access-point-id "$ap" --query 'AccessPoints[0].FileSystemId' --output text)" = "$fs" ] \
	|| fail "access point $ap not on $fs"
[ "$(efs describe-backup-policy --file-system-id "$fs" --query BackupPolicy.Status --output text)" = ENABLED ] \
	|| fail "backup policy of $fs"
efs describe-file-system-policy --file-system-id "$fs" --query Policy --output text | grep -q AccessedViaMountTarget \
	|| fail "file system policy of $fs"
[ "$(efs describe-file-systems --file-system-id "$replica" --region eu-west-1 --query 'FileSystems[0].FileSystemProtection.ReplicationOverwriteProtection' --output text)" = REPLICATING ] \
	|| fail "replica $replica in eu-west-1"
[ "$(efs describe-replication-configurations --file-system-id "$existing" --query 'Replications[0].Destinations[0].Status' --output text)" = ENABLED ] \
	|| fail "replication into the existing $existing not ENABLED"
ok "AWS CLI sees it: $fs, $mt, $ap, replica $replica in eu-west-1, replication into the existing $existing"

# A second plan shows no changes.
tf 180 plan -detailed-exitcode -input=false || { show; fail "second plan is not empty"; }
ok "plan -detailed-exitcode: no changes"

# Import into an empty state: forget the file system and its mount target,
# import them by ID, and the plan is clean again.
tf 60 state rm aws_efs_mount_target.app_a aws_efs_file_system.app || { show; fail "state rm"; }
tf 120 import -input=false aws_efs_file_system.app "$fs" || { show; fail "import file system $fs"; }
tf 120 import -input=false aws_efs_mount_target.app_a "$mt" || { show; fail "import mount target $mt"; }
ok "import: $fs and $mt"
tf 180 plan -detailed-exitcode -input=false || { show; fail "plan after import is not empty"; }
ok "plan after import: no changes"

tf 300 destroy -auto-approve -input=false || { show; fail "terraform destroy"; }
ok "destroy: $(grep -o 'Destroy complete!.*' "$work/tf.out")"

# Nothing the configuration made is left but the replica efsd made in
# eu-west-1: as in EFS, deleting a replication configuration keeps its
# destination (now writable), and the provider does not delete it. It is
# the user's to delete, here with the AWS CLI.
left=$(efs describe-file-systems --query 'length(FileSystems)' --output text)
[ "$left" = 0 ] || fail "$left file systems left in us-east-1"
left=$(efs describe-file-systems --region eu-west-1 --query 'FileSystems[].FileSystemId' --output text)
[ "$left" = "$replica" ] || fail "left in eu-west-1: '$left', want the replica $replica"
[ "$(efs describe-file-systems --region eu-west-1 --file-system-id "$replica" --query 'FileSystems[0].FileSystemProtection.ReplicationOverwriteProtection' --output text)" = ENABLED ] \
	|| fail "replica $replica still protected after destroy"
efs delete-file-system --region eu-west-1 --file-system-id "$replica"
gone=""
for _ in $(seq 100); do
	if ! efs describe-file-systems --region eu-west-1 --file-system-id "$replica" >/dev/null 2>&1; then gone=yes; break; fi
	sleep 0.1
done
[ -n "$gone" ] || fail "replica $replica not deleted"
[ "$(ec2 describe-security-groups --filters Name=group-name,Values=efs-nfs --query 'length(SecurityGroups)' --output text)" = 0 ] \
	|| fail "security group efs-nfs left"
ok "nothing left (AWS CLI)"

kill -TERM "$pid"
wait "$pid" || fail "efsd exited non-zero on SIGTERM"
pid=""
ok "efsd clean shutdown"
echo "terraform: $passed passed, $failed failed"
