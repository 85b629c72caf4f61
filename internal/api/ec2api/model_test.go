package ec2api

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"unicode"
)

// model is the part of botocore's ec2 model pinned in testdata (see
// ec2-served.source): the served operations and the shapes they reach.
type model struct {
	Operations map[string]struct {
		Output struct{ Shape string }
	}
	Shapes map[string]struct {
		Type    string
		Members map[string]struct {
			Shape        string
			LocationName string
		}
		Member struct {
			Shape        string
			LocationName string
		}
	}
}

// TestShapesMatchModel holds the hand-written response shapes to the
// pinned model: every element efsd writes is a member of the model's shape
// under its wire name (locationName), lists are <item> lists, and scalars
// have the model's type. A misspelt tag would otherwise be dropped
// silently by the SDKs.
func TestShapesMatchModel(t *testing.T) {
	buf, err := os.ReadFile("testdata/ec2-served.json")
	if err != nil {
		t.Fatal(err)
	}
	var m model
	if err := json.Unmarshal(buf, &m); err != nil {
		t.Fatal(err)
	}
	responses := map[string]any{
		"DescribeVpcs":                  describeVpcsResponse{},
		"DescribeVpcAttribute":          describeVpcAttributeResponse{},
		"DescribeSubnets":               describeSubnetsResponse{},
		"DescribeSecurityGroups":        describeSecurityGroupsResponse{},
		"DescribeAvailabilityZones":     describeAvailabilityZonesResponse{},
		"DescribeNetworkInterfaces":     describeNetworkInterfacesResponse{},
		"CreateSecurityGroup":           createSecurityGroupResponse{},
		"AuthorizeSecurityGroupIngress": returnResponse{},
		"RevokeSecurityGroupIngress":    returnResponse{},
		"AuthorizeSecurityGroupEgress":  returnResponse{},
		"RevokeSecurityGroupEgress":     returnResponse{},
		"DeleteSecurityGroup":           deleteSecurityGroupResponse{},
	}
	for op := range actions {
		if _, ok := responses[op]; !ok {
			t.Errorf("%s is served but its response shape is not checked here", op)
		}
	}
	for op, resp := range responses {
		o, ok := m.Operations[op]
		if !ok {
			t.Errorf("%s is not in the pinned model; rerun testdata/ec2-served.py", op)
			continue
		}
		typ := reflect.TypeOf(resp)
		if f, ok := typ.FieldByName("XMLName"); ok && f.Tag.Get("xml") != "" && f.Tag.Get("xml") != op+"Response" {
			t.Errorf("%s: root element %s", op, f.Tag.Get("xml"))
		}
		checkShape(t, &m, typ, o.Output.Shape, op)
	}
}

func checkShape(t *testing.T, m *model, typ reflect.Type, shape, path string) {
	t.Helper()
	s, ok := m.Shapes[shape]
	if !ok {
		t.Errorf("%s: shape %s not pinned", path, shape)
		return
	}
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	switch s.Type {
	case "structure":
		if typ.Kind() != reflect.Struct {
			t.Errorf("%s: %s is a structure, Go has %s", path, shape, typ)
			return
		}
		for i := range typ.NumField() {
			f := typ.Field(i)
			if f.Name == "XMLName" || f.Anonymous { // the root element; the header (xmlns, requestId)
				continue
			}
			tag, _, _ := strings.Cut(f.Tag.Get("xml"), ",")
			found := false
			for name, mem := range s.Members {
				wire := mem.LocationName
				if wire == "" {
					wire = string(unicode.ToLower(rune(name[0]))) + name[1:]
				}
				if wire == tag {
					found = true
					checkShape(t, m, f.Type, mem.Shape, path+"."+tag)
				}
			}
			if !found {
				t.Errorf("%s.%s: no member of %s is written %q", path, tag, shape, tag)
			}
		}
	case "list":
		items, ok := typ.FieldByName("Items")
		if typ.Kind() != reflect.Struct || !ok || items.Tag.Get("xml") != "item" {
			t.Errorf("%s: %s is a list, Go has %s", path, shape, typ)
			return
		}
		if s.Member.LocationName != "item" {
			t.Errorf("%s: %s's members are <%s>, not <item>", path, shape, s.Member.LocationName)
		}
		if items.Type.Elem().NumField() > 0 { // set[struct{}]: always empty
			checkShape(t, m, items.Type.Elem(), s.Member.Shape, path+".item")
		}
	case "string":
		if typ.Kind() != reflect.String {
			t.Errorf("%s: %s is a string, Go has %s", path, shape, typ)
		}
	case "boolean":
		if typ.Kind() != reflect.Bool {
			t.Errorf("%s: %s is a boolean, Go has %s", path, shape, typ)
		}
	case "integer", "long":
		if typ.Kind() != reflect.Int {
			t.Errorf("%s: %s is an integer, Go has %s", path, shape, typ)
		}
	default:
		t.Errorf("%s: %s has type %s, which efsd does not write", path, shape, s.Type)
	}
}
