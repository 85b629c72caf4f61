package region

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

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

// Regions newer than the hand-kept list the catalogue once was are served,
// since the list is generated from botocore's endpoint data.
func TestNewerRegionsServed(t *testing.T) {
	c := Default()
	for _, r := range []string{"ap-southeast-5", "ap-southeast-7", "mx-central-1", "ap-east-2", "us-east-1"} {
		if !c.Has(r) || len(c.Zones(r)) == 0 {
			t.Errorf("region %s is not served (zones %v)", r, c.Zones(r))
		}
	}
	for _, r := range []string{"us-gov-west-1", "cn-north-1", "fips-us-east-1"} {
		if c.Has(r) {
			t.Errorf("region %s of another partition or a pseudo-region is served", r)
		}
	}
}

// TestGeneratedUpToDate reruns tools/regiongen on the pinned endpoint data
// and requires byte-identical output.
func TestGeneratedUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the generator")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go tool unavailable: %v", err)
	}
	out := filepath.Join(t.TempDir(), "zz_regions.go")
	cmd := exec.Command(goBin, "run", "../../tools/regiongen", "-in", "endpoints.json.gz", "-out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("regiongen: %v\n%s", err, b)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("zz_regions.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("zz_regions.go is stale; run go run ./tools/regiongen")
	}
}
