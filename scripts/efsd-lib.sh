# Sourced by the end-to-end scripts (e2e.sh, terraform.sh): one way to build
# the real efsd, start it on a throwaway data directory and free loopback
# ports, point the AWS CLI at it, and stop it on every exit path.
#
# start_efsd sets: work (scratch directory, removed at exit), pid, port,
# nfsport, EFSD_ENDPOINT (exported); EFSD_E2E_FLAGS adds flags to efsd (e.g.
# "--log-level debug"); defines efs and ec2 (the AWS CLI against
# efsd). The caller defines fail() before calling wait_efsd.

work=$(mktemp -d)
pid=""
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_efsd() {
	go build -o "$work/efsd" ./cmd/efsd
	port=$(freeport)
	nfsport=$(freeport)
	echo "{\"nfsPort\": $nfsport}" >"$work/efsd.json"
	"$work/efsd" ${EFSD_E2E_FLAGS:-} --listen "127.0.0.1:$port" --data-dir "$work/data" --config "$work/efsd.json" >"$work/efsd.log" 2>&1 &
	pid=$!
	export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
	export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
	export EFSD_ENDPOINT="http://127.0.0.1:$port"
}

efs() { aws efs --endpoint-url "$EFSD_ENDPOINT" --output json "$@"; }
ec2() { aws ec2 --endpoint-url "$EFSD_ENDPOINT" --output json "$@"; }

# wait_efsd waits (10 s at most) until efsd says it listens.
wait_efsd() {
	for _ in $(seq 100); do
		grep -q "listening on" "$work/efsd.log" 2>/dev/null && break
		sleep 0.1
	done
	grep -q "listening on" "$work/efsd.log" || fail "efsd did not start"
}
