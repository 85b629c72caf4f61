#!/usr/bin/env bash
# The project's test command: formatting, vet, the Go tests with the race
# detector, then the end-to-end scripts against the real binary: the AWS CLI
# and boto3 (e2e.sh), NFSv4 through two fuse-nfs mounts (e2e-nfs4.sh, which
# skips, saying so, without the fuse-nfs that .ci/run builds in EFSD_FUSE_NFS),
# then Terraform (terraform.sh, which skips, saying so, without terraform or the
# hashicorp/aws provider in a filesystem mirror).
set -euo pipefail
cd "$(dirname "$0")/.."

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
go test -race -count=1 ./...
bash scripts/e2e.sh
bash scripts/e2e-nfs4.sh
bash scripts/terraform.sh
