package loadgen

import (
	"fmt"
	"net"
	"syscall"
)

// loopbackOnly is a net.Dialer Control function that refuses to connect
// anywhere but 127.0.0.0/8 or ::1: the harness sends no traffic off the
// machine even if an endpoint is mistyped.
func loopbackOnly(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("loadgen: refusing to dial %s: not a loopback address", address)
	}
	return nil
}

// LoopbackOnly is the dialer Control function every harness connection
// uses: it refuses any address outside 127.0.0.0/8 and ::1.
func LoopbackOnly(network, address string, c syscall.RawConn) error {
	return loopbackOnly(network, address, c)
}
