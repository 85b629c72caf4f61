package ec2api

import (
	"net/url"
	"strconv"
	"testing"

	"github.com/efsd/efsd/internal/glob"
)

func TestWildcard(t *testing.T) {
	for _, tc := range []struct {
		pattern, v string
		want       bool
	}{
		{"us-east-1a", "us-east-1a", true},
		{"us-east-1*", "us-east-1a", true},
		{"*", "", true},
		{"us-east-1?", "us-east-1b", true},
		{"us-east-1?", "us-east-1", false},
		{"127.*/24", "127.1.2.0/24", true},
		{"*a*b", "xaybzb", true},
		{"[a]", "a", false},
		{"EFS mount target for *", "EFS mount target for fs-1 (fsmt-1)", true},
		{"abc", "abd", false},
	} {
		if got := glob.Match(tc.pattern, tc.v); got != tc.want {
			t.Errorf("wildcard(%q, %q) = %v, want %v", tc.pattern, tc.v, got, tc.want)
		}
	}
}

func TestKebab(t *testing.T) {
	for in, want := range map[string]string{"isDefault": "is-default", "availabilityZone": "availability-zone",
		"vpc-id": "vpc-id", "tag:MyKey": "tag:MyKey", "defaultForAz": "default-for-az"} {
		if got := kebab(in); got != want {
			t.Errorf("kebab(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestListOrderAndBounds(t *testing.T) {
	c := &call{form: url.Values{"SubnetId.10": {"c"}, "SubnetId.2": {"b"}, "SubnetId.1": {"a"}}}
	got, err := list(c, "SubnetId")
	if err != nil || len(got) != 3 || got[0] != "a" || got[1] != "b" || got[2] != "c" {
		t.Fatalf("list = %v, %v", got, err)
	}
	for _, bad := range []string{"SubnetId.0", "SubnetId.x", "SubnetId.-1"} {
		if _, err := list(&call{form: url.Values{bad: {"a"}}}, "SubnetId"); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	big := url.Values{}
	for i := range maxListed + 1 {
		big.Set("SubnetId."+itoa(i+1), "x")
	}
	if _, err := list(&call{form: big}, "SubnetId"); err == nil {
		t.Error("a list over the bound was accepted")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestPaging(t *testing.T) {
	items := []string{"d", "a", "c", "b", "e"}
	p := page{max: 2}
	var got []string
	for range 5 {
		pg, next := apply(p, append([]string(nil), items...), func(s string) string { return s })
		got = append(got, pg...)
		if next == "" {
			break
		}
		c := &call{form: url.Values{"NextToken": {next}, "MaxResults": {"5"}}}
		np, err := paging(c, "Ids", nil)
		if err != nil {
			t.Fatal(err)
		}
		p = page{max: 2, after: np.after}
	}
	if len(got) != 5 || got[0] != "a" || got[4] != "e" {
		t.Fatalf("pages gave %v", got)
	}
}
