// Package region knows which AWS regions and availability zones efsd serves.
//
// Real EFS lives in a fixed set of regions, each with a handful of
// availability zones. Clients pick the region through the SigV4 credential
// scope and name zones in One Zone requests, so efsd needs the same catalogue
// to accept exactly what AWS accepts and to fill in AvailabilityZoneId.
package region

import (
	"sort"
	"strings"
)

// Zone is one availability zone of a region.
type Zone struct {
	Name string // e.g. us-east-1a
	ID   string // e.g. use1-az1
}

// Catalog is an immutable set of regions and their zones.
type Catalog struct {
	zones map[string][]Zone
}

// zoneCounts is the number of availability zones of the regions where AWS
// publishes it; a region missing here (a newer one) gets defaultZones. The
// letters are assigned a, b, c, … in order. Which regions exist comes from
// efsRegions, generated from botocore's endpoint data.
var zoneCounts = map[string]int{
	"us-east-1": 6, "us-east-2": 3, "us-west-1": 2, "us-west-2": 4,
	"af-south-1": 3, "ap-east-1": 3, "ap-south-1": 3, "ap-south-2": 3,
	"ap-southeast-1": 3, "ap-southeast-2": 3, "ap-southeast-3": 3, "ap-southeast-4": 3,
	"ap-northeast-1": 3, "ap-northeast-2": 4, "ap-northeast-3": 3,
	"ca-central-1": 3, "ca-west-1": 3,
	"eu-central-1": 3, "eu-central-2": 3, "eu-west-1": 3, "eu-west-2": 3, "eu-west-3": 3,
	"eu-south-1": 3, "eu-south-2": 3, "eu-north-1": 3,
	"il-central-1": 3, "me-south-1": 3, "me-central-1": 3, "sa-east-1": 3,
}

// defaultZones is the zone count of a region zoneCounts does not know.
const defaultZones = 3

// Default returns the catalogue of the commercial regions where EFS is offered.
func Default() *Catalog {
	c := &Catalog{zones: make(map[string][]Zone, len(efsRegions))}
	for _, name := range efsRegions {
		n, ok := zoneCounts[name]
		if !ok {
			n = defaultZones
		}
		short := shortName(name)
		zs := make([]Zone, n)
		for i := range n {
			zs[i] = Zone{
				Name: name + string(rune('a'+i)),
				ID:   short + "-az" + itoa(i+1),
			}
		}
		c.zones[name] = zs
	}
	return c
}

// Restrict returns a catalogue holding only the named regions of c; unknown
// names are ignored.
func (c *Catalog) Restrict(names []string) *Catalog {
	out := &Catalog{zones: make(map[string][]Zone)}
	for _, n := range names {
		if zs, ok := c.zones[n]; ok {
			out.zones[n] = zs
		}
	}
	return out
}

// Has reports whether the region is served.
func (c *Catalog) Has(region string) bool {
	_, ok := c.zones[region]
	return ok
}

// Regions lists the served regions in sorted order.
func (c *Catalog) Regions() []string {
	out := make([]string, 0, len(c.zones))
	for n := range c.zones {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Zones lists a region's availability zones.
func (c *Catalog) Zones(region string) []Zone {
	return append([]Zone(nil), c.zones[region]...)
}

// Zone finds an availability zone by name within a region.
func (c *Catalog) Zone(region, name string) (Zone, bool) {
	for _, z := range c.zones[region] {
		if z.Name == name {
			return z, true
		}
	}
	return Zone{}, false
}

// RegionOfZone returns the region an availability zone name belongs to.
func (c *Catalog) RegionOfZone(name string) (string, bool) {
	for r, zs := range c.zones {
		for _, z := range zs {
			if z.Name == name {
				return r, true
			}
		}
	}
	return "", false
}

// shortName abbreviates a region the way AWS zone IDs do:
// us-east-1 → use1, ap-southeast-2 → apse2, eu-central-1 → euc1.
func shortName(region string) string {
	parts := strings.Split(region, "-")
	var b strings.Builder
	b.WriteString(parts[0])
	for _, p := range parts[1 : len(parts)-1] {
		switch {
		case strings.HasPrefix(p, "north") && len(p) > len("north"):
			b.WriteString("n" + p[len("north"):len("north")+1])
		case strings.HasPrefix(p, "south") && len(p) > len("south"):
			b.WriteString("s" + p[len("south"):len("south")+1])
		default:
			b.WriteByte(p[0])
		}
	}
	b.WriteString(parts[len(parts)-1])
	return b.String()
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
