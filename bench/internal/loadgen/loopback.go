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
