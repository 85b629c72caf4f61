package region

import "testing"

func TestZones(t *testing.T) {
	c := Default()
	z, ok := c.Zone("us-east-1", "us-east-1c")
	if !ok || z.ID != "use1-az3" {
		t.Fatalf("us-east-1c = %+v, %v; want use1-az3", z, ok)
	}
	if _, ok := c.Zone("us-east-1", "eu-west-1a"); ok {
		t.Fatal("eu-west-1a must not belong to us-east-1")
	}
	if r, ok := c.RegionOfZone("eu-west-1b"); !ok || r != "eu-west-1" {
		t.Fatalf("RegionOfZone(eu-west-1b) = %q, %v", r, ok)
	}
	for region, want := range map[string]string{
		"ap-southeast-2": "apse2-az1", "ap-northeast-1": "apne1-az1",
		"eu-central-1": "euc1-az1", "sa-east-1": "sae1-az1",
	} {
		if got := c.Zones(region)[0].ID; got != want {
			t.Errorf("%s first zone ID = %q, want %q", region, got, want)
		}
	}
	if c.Has("xx-nowhere-1") {
		t.Fatal("unknown region reported as served")
	}
	r := c.Restrict([]string{"us-east-1", "nope"})
	if got := r.Regions(); len(got) != 1 || got[0] != "us-east-1" {
		t.Fatalf("Restrict = %v", got)
	}
}
