#!/usr/bin/env bash
# Builds fuse-nfs (sahlberg/fuse-nfs at 331e6fe, GPL-3.0: a test tool, never part of efsd; the
# unmodified source is scripts/testdata/fuse-nfs-331e6fe.tar.gz, as ../shared/tools has it) with
# scripts/testdata/fuse-nfs-v4.patch, for scripts/e2e-nfs4.sh. The patch makes it usable over
# NFSv4 with Debian's libnfs 4.0: it forwards POSIX locks to the server (LOCK, LOCKU, LOCKT), and
# writes in 2 KiB pieces (libnfs 4.0 cannot send a larger NFSv4 WRITE, to any server).
#
# Usage: scripts/build-fuse-nfs.sh DIR — prints the binary's path; needs libnfs-dev, libfuse-dev,
# autoconf, automake, libtool and pkg-config (.ci/run installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: build-fuse-nfs.sh DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
if [ -x "$out/fuse-nfs/fuse/fuse-nfs" ] && [ "$out/fuse-nfs/.patched" -nt scripts/testdata/fuse-nfs-v4.patch ]; then
	echo "$out/fuse-nfs/fuse/fuse-nfs"
	exit 0
fi
rm -rf "$out/fuse-nfs"
tar xzf scripts/testdata/fuse-nfs-331e6fe.tar.gz -C "$out"
(cd "$out/fuse-nfs" && patch -p1 -s <"$OLDPWD/scripts/testdata/fuse-nfs-v4.patch" && ./setup.sh && ./configure && make -j2) >"$out/build.log" 2>&1 ||
	{ tail -30 "$out/build.log" >&2; exit 1; }
touch "$out/fuse-nfs/.patched"
echo "$out/fuse-nfs/fuse/fuse-nfs"
