package storetest

import (
	"errors"
	"slices"
	"testing"

	"github.com/efsd/efsd/internal/efs"
)

// A network is one record per account and region, replaced by PutNetwork.
func testNetwork(t *testing.T, s efs.Store) {
	get := func(p efs.Principal) (*efs.Network, error) {
		return tryRead(s, func(tx efs.Tx) (*efs.Network, error) { return tx.Network(p.Account, p.Region) })
	}
	put := func(p efs.Principal, n *efs.Network) {
		t.Helper()
		update(t, s, func(tx efs.Tx) error { return tx.PutNetwork(p.Account, p.Region, n) })
	}
	expect := func(what string, want map[efs.Principal]*efs.Network) {
		t.Helper()
		for _, p := range scopes {
			got, err := get(p)
			if want[p] == nil {
				expectNotFound(t, what+": Network of "+p.Account+"/"+p.Region, err)
				continue
			}
			if err != nil {
				t.Errorf("%s: Network of %v: %v", what, p, err)
				continue
			}
			expectSame(t, what+": Network of "+p.Account+"/"+p.Region, want[p], got)
		}
	}
	expect("never made", nil)

	n1 := newNetwork(1)
	requireComplete(t, n1)
	put(pA, n1)
	expect("one", map[efs.Principal]*efs.Network{pA: n1})

	n2 := newNetwork(2)
	n2.Subnets = append(n2.Subnets, efs.Subnet{ID: "subnet-b", VPCID: "vpc-2", ZoneName: "us-east-1b", ZoneID: "use1-az2", CIDR: "127.0.33.0/24"})
	put(pA, n2)
	n3 := newNetwork(3)
	put(pB, n3)
	expect("replaced", map[efs.Principal]*efs.Network{pA: n2, pB: n3})
}

// NextVPCBlock counts 1, 2, 3, … over all accounts; numbers a committed
// transaction took are never handed out again.
func testNextVPCBlock(t *testing.T, s efs.Store) {
	var got []int
	next := func(tx efs.Tx) error {
		n, err := tx.NextVPCBlock()
		got = append(got, n)
		return err
	}
	update(t, s, func(tx efs.Tx) error { return errors.Join(next(tx), next(tx)) })
	update(t, s, next)
	if want := []int{1, 2, 3}; !slices.Equal(got, want) {
		t.Fatalf("NextVPCBlock = %v, want %v", got, want)
	}
	refused := errors.New("refused")
	if err := s.Update(t.Context(), func(tx efs.Tx) error { return errors.Join(next(tx), refused) }); !errors.Is(err, refused) {
		t.Fatalf("Update = %v, want the function's error", err)
	}
	update(t, s, next)
	if last := got[len(got)-1]; last <= 3 {
		t.Errorf("NextVPCBlock after a rollback = %d, want > 3", last)
	}
}
