package main

import (
	"fmt"
	"go/token"
	"strings"
)

// emitStructs emits one struct per reachable structure shape, with its
// Validate methods. Field and type names are the model's names verbatim.
func (g *gen) emitStructs() error {
	for _, name := range g.sortedShapes("structure") {
		s := g.m.Shapes[name]
		switch roles := g.roles[name]; {
		case s.isError():
			g.p("// %s is the body of the %s error (HTTP %d).", name, name, s.Error.HTTPStatusCode)
		case len(roles) > 0:
			g.p("// %s is %s.", name, strings.Join(roles, ", "))
		default:
			g.p("// %s is a structure nested in other shapes.", name)
		}
		g.p("type %s struct {", name)
		for _, mname := range s.Members.Keys {
			if err := g.emitField(name, s, mname); err != nil {
				return fmt.Errorf("structure %s member %s: %w", name, mname, err)
			}
		}
		g.p("}\n")
		if err := g.emitValidate(name, s); err != nil {
			return err
		}
	}
	return nil
}

// emitField emits one member. Body members are tagged with their JSON name
// and omitempty, except lists (and maps) that are required or belong to an
// operation's output, which must render even when empty ("Tags": [],
// "FileSystems": []): clients index them without checking. Members bound
// from the URI, query or headers are json:"-".
func (g *gen) emitField(structName string, s *shape, mname string) error {
	mr := s.Members.Values[mname]
	if !token.IsIdentifier(mname) || !token.IsExported(mname) {
		return fmt.Errorf("not an exported Go identifier")
	}
	typ, err := g.goType(mr.Shape)
	if err != nil {
		return err
	}
	if mr.Location != "" && !g.inputs[structName] {
		return fmt.Errorf("HTTP location %q outside an operation input is not supported", mr.Location)
	}
	wire := orElse(mr.LocationName, mname)
	switch mr.Location {
	case "":
		tag := wire
		collection := strings.HasPrefix(typ, "[]") || strings.HasPrefix(typ, "map[")
		if !collection || !s.isRequired(mname) && !g.outputs[structName] {
			tag += ",omitempty"
		}
		g.p("%s %s `json:\"%s\"`", mname, typ, tag)
	case "uri":
		g.p("%s %s `json:\"-\"` // URI label {%s}", mname, typ, wire)
	case "querystring", "header":
		g.p("%s %s `json:\"-\"` // %s %q", mname, typ, mr.Location, wire)
	default:
		return fmt.Errorf("unsupported location %q", mr.Location)
	}
	return nil
}

// goType is the Go type of a member targeting shape name: pointers for
// scalars and structures, so that absent and zero stay distinguishable.
func (g *gen) goType(name string) (string, error) {
	switch s := g.m.Shapes[name]; s.Type {
	case "structure":
		return "*" + name, nil
	case "list":
		elem := g.m.Shapes[s.Member.Shape]
		if elem.Type == "structure" {
			return "[]" + s.Member.Shape, nil
		}
		t, err := scalarType(elem.Type)
		return "[]" + t, err
	case "map":
		if g.m.Shapes[s.Key.Shape].Type != "string" || g.m.Shapes[s.Value.Shape].Type != "string" {
			return "", fmt.Errorf("map %s: only string-to-string maps are supported", name)
		}
		return "map[string]string", nil
	default:
		t, err := scalarType(s.Type)
		return "*" + t, err
	}
}

func scalarType(modelType string) (string, error) {
	switch modelType {
	case "string":
		return "string", nil
	case "integer", "long":
		return "int64", nil
	case "double", "float":
		return "float64", nil
	case "boolean":
		return "bool", nil
	case "timestamp":
		return "Timestamp", nil
	}
	return "", fmt.Errorf("unsupported shape type %q", modelType)
}
