#!/usr/bin/env bash
# End-to-end over NFSv4 with a real POSIX mount: the real efsd, a file
# system and its mount target made with the AWS CLI, and two fuse-nfs mounts
# of it over NFSv4 (libnfs 4.0 speaks NFSv4.0), as two client machines
# would have. Through them: untar, git, and SQLite with a concurrent writer
# on each mount, whose transactions only stay whole if the server's byte-range
# locks exclude the two mounts from each other.
#
# fuse-nfs (a test tool, ../shared/tools) is built by .ci/run with a patch
# that forwards POSIX locks to the server (scripts/testdata); give its path in
# EFSD_FUSE_NFS. Without it, without root or /dev/fuse, this skips, saying so
# (CI fails instead).
set -euo pipefail
cd "$(dirname "$0")/.."

skip() {
	if [ "${CI:-}" = true ]; then echo "e2e-nfs4: FAIL: $*" >&2; exit 1; fi
	echo "e2e-nfs4: SKIPPED: $*" >&2
	exit 0
}
fusenfs=${EFSD_FUSE_NFS:-}
[ -n "$fusenfs" ] && [ -x "$fusenfs" ] || skip "EFSD_FUSE_NFS does not name a fuse-nfs binary (.ci/run builds one)"
[ "$(id -u)" = 0 ] || skip "FUSE mounts need root"
[ -c /dev/fuse ] || skip "no /dev/fuse"
command -v git >/dev/null || skip "git is not installed"

. scripts/efsd-lib.sh
mounts=()
unmount_all() {
	for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
}
trap 'unmount_all; cleanup' EXIT
start_efsd
fail() { echo "e2e-nfs4: FAIL: $*" >&2; grep -v "level=INFO msg=request" "$work/efsd.log" | tail -40 >&2; exit 1; }
wait_efsd
passed=0
ok() { passed=$((passed + 1)); echo "e2e-nfs4: ok - $*"; }

fs=$(efs create-file-system --creation-token nfs4 --query FileSystemId --output text)
for _ in $(seq 100); do
	[ "$(efs describe-file-systems --file-system-id "$fs" --query 'FileSystems[0].LifeCycleState' --output text)" = available ] && break
	sleep 0.1
done
subnet=$(ec2 describe-subnets --filters Name=availability-zone,Values=us-east-1a Name=default-for-az,Values=true \
	--query 'Subnets[0].SubnetId' --output text)
mt=$(efs create-mount-target --file-system-id "$fs" --subnet-id "$subnet" --query MountTargetId --output text)
ip=""
for _ in $(seq 100); do
	read -r state ip < <(efs describe-mount-targets --mount-target-id "$mt" --query 'MountTargets[0].[LifeCycleState,IpAddress]' --output text)
	[ "$state" = available ] && break
	sleep 0.1
done
[ "$state" = available ] || fail "mount target $mt not available"
ok "mount target $mt of $fs at $ip"

# No attribute or entry caching (-E/-T/-N 0), as NFS's "noac" which SQLite asks of shared NFS: a
# file one mount removed must not look present through the other.
mountv4() {
	mkdir -p "$1"
	"$fusenfs" -n "nfs://$ip/?version=4&nfsport=$nfsport" -E 0 -T 0 -N 0 ${2:-} ${EFSD_FUSE_NFS_LOG:+-L "$EFSD_FUSE_NFS_LOG"} -m "$1" >"$work/fuse-$(basename "$1").log" 2>&1 &
	mounts+=("$1")
	for _ in $(seq 100); do
		mountpoint -q "$1" && return 0
		sleep 0.1
	done
	fail "fuse-nfs did not mount $1: $(cat "$work/fuse-$(basename "$1").log")"
}
m1="$work/m1" m2="$work/m2"
mountv4 "$m1"
mountv4 "$m2"
vol="$work/data/volumes/000000000000/us-east-1/$fs"
ok "two NFSv4 mounts (fuse-nfs over libnfs)"

# untar: a tree with directories, modes, symlinks; identical on the server's disk and through the other mount
mkdir -p "$work/tree/src/sub" && head -c 200000 /dev/urandom >"$work/tree/src/blob" && echo hi >"$work/tree/src/sub/note"
chmod 0750 "$work/tree/src/sub"
for i in $(seq 50); do echo "file $i" >"$work/tree/src/f$i"; done
tar -C "$work/tree" -cf "$work/tree.tar" src
tar -C "$m1" -xf "$work/tree.tar" || fail "untar into the NFSv4 mount"
diff -r "$work/tree/src" "$vol/src" >/dev/null || fail "untarred tree differs on the server's disk"
diff -r "$work/tree/src" "$m2/src" >/dev/null || fail "untarred tree differs through the second mount"
ok "untar: the tree is identical on disk and through the other mount"
# (libnfs 4.0 reads a link's target as a C string from the reply, where only XDR padding may end it:
# a target whose length is a multiple of 4 reads back with garbage, from any server.)
ln -s ./sub/note "$m1/src/link" || fail "symlink"
r1=$(readlink "$m2/src/link" || true); r2=$(readlink "$vol/src/link" || true)
[ "$r1" = ./sub/note ] && [ "$r2" = ./sub/note ] || fail "symlink read back: through the other mount \"$r1\", on disk \"$r2\""
ok "symlink made through one mount, read through the other"

# git: init, commit, fsck through one mount, log through the other
(
	cd "$m1" && git init -q repo && cd repo && git config user.email e2e@efsd && git config user.name e2e &&
		cp -r "$work/tree/src" . && git add -A && git commit -qm "first" && echo more >>src/f1 && git commit -qam second && git fsck --strict --no-progress
) || fail "git through the NFSv4 mount"
[ "$(cd "$m2/repo" && git log --oneline | wc -l)" = 2 ] || fail "git log through the second mount"
(cd "$m2/repo" && git fsck --strict --no-progress) || fail "git fsck through the second mount"
ok "git init/commit/fsck, log from the other mount"

# SQLite: one writer per mount, concurrently, each inserting in transactions that read then write.
# These two mounts bypass the kernel's page cache (direct_io), as SQLite on NFS needs: FUSE, unlike
# an NFS client, does not drop cached pages when a lock is taken.
m3="$work/m3" m4="$work/m4"
mountv4 "$m3" -d
mountv4 "$m4" -d
python3 - "$m3/db.sqlite" <<'PY' || fail "sqlite setup"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("create table t (id integer primary key, who text, n integer)")
c.execute("create table counter (v integer)")
c.execute("insert into counter values (0)")
c.commit()
PY
writer() {
	python3 - "$1" "$2" <<'PY'
import sqlite3, sys, time
path, who = sys.argv[1], sys.argv[2]
c = sqlite3.connect(path, timeout=60, isolation_level=None)
done = 0
deadline = time.time() + 120
while done < 100:
    if time.time() > deadline:
        sys.exit("writer %s: only %d transactions in 120 s" % (who, done))
    try:
        c.execute("begin immediate")
        v = c.execute("select v from counter").fetchone()[0]
        c.execute("update counter set v = ?", (v + 1,))
        c.execute("insert into t (who, n) values (?, ?)", (who, v))
        c.execute("commit")
        done += 1
    except sqlite3.OperationalError as e:
        if "locked" not in str(e) and "busy" not in str(e):
            raise
        try:
            c.execute("rollback")
        except sqlite3.OperationalError:
            pass
        time.sleep(0.01)
PY
}
writer "$m3/db.sqlite" one &
w1=$!
writer "$m4/db.sqlite" two &
w2=$!
wait "$w1" || fail "the writer on the first mount failed"
wait "$w2" || fail "the writer on the second mount failed"
python3 - "$vol/db.sqlite" <<'PY' || fail "sqlite: the concurrent writers' transactions are not whole"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
assert c.execute("pragma integrity_check").fetchone()[0] == "ok"
rows = c.execute("select count(*), count(distinct n) from t").fetchone()
v = c.execute("select v from counter").fetchone()[0]
assert rows == (200, 200) and v == 200, (rows, v)
PY
ok "sqlite: two concurrent writers on two mounts, 200 transactions, none lost, integrity ok"

echo "e2e-nfs4: $passed passed"
