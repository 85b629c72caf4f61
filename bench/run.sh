#!/bin/sh
# Run the efsd benchmarks (see bench/README.md). Needs root: the data suites
# run on a loop-mounted ext4 file system the harness creates and removes.
#
#   bench/run.sh [--quick] [--suite api,replication,rpo,scale,xdeploy] [other efsbench flags]
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	echo "bench/run.sh: run as root (sudo bench/run.sh): the harness mounts a loop device" >&2
	exit 1
fi
exec go run ./bench/cmd/efsbench "$@"
