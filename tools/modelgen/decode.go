package main

import (
	"fmt"
	"strings"
)

// emitDecoders emits DecodeOp for every operation with an input shape: the
// JSON body first, then URI labels, query parameters and headers (which the
// body cannot override: their fields are json:"-"), then Validate.
func (g *gen) emitDecoders() error {
	g.imports["net/http"] = true
	for _, name := range g.m.Operations.Keys {
		op := g.m.Operations.Values[name]
		if op.Input == nil {
			continue
		}
		in := g.m.Shapes[op.Input.Shape]
		if in.Type != "structure" {
			return fmt.Errorf("operation %s: input %s is not a structure", name, op.Input.Shape)
		}
		g.p("// Decode%s binds and validates the input of %s (%s %s).", name, name, op.HTTP.Method, op.HTTP.RequestURI)
		g.p("func Decode%s(r *http.Request, body []byte) (*%s, error) {", name, op.Input.Shape)
		g.p("in := new(%s)", op.Input.Shape)
		g.p("if err := decodeBody(body, in); err != nil { return nil, err }")
		var binds []string
		query, parses := false, false
		for _, mname := range in.Members.Keys {
			mr := in.Members.Values[mname]
			if mr.Location == "" {
				continue
			}
			stmt, err := g.bind(op, mname, mr)
			if err != nil {
				return fmt.Errorf("operation %s member %s: %w", name, mname, err)
			}
			binds = append(binds, stmt)
			query = query || mr.Location == "querystring"
			parses = parses || strings.Contains(stmt, "&vs")
		}
		if query {
			g.p("q := r.URL.Query()")
		}
		if parses {
			g.p("var vs violations")
		}
		if len(binds) > 0 {
			g.p("%s", strings.Join(binds, "\n"))
		}
		if parses {
			g.p("if err := vs.err(); err != nil { return nil, err }")
		}
		g.p("if err := in.Validate(); err != nil { return nil, err }")
		g.p("return in, nil\n}\n")
	}
	return nil
}

// bind is the statement filling one URI, query or header member; integers
// that do not parse are recorded in vs (hence "&vs") as AWS-style violations.
func (g *gen) bind(op *operation, mname string, mr *ref) (string, error) {
	wire, path, s := orElse(mr.LocationName, mname), wireName(mname, mr), g.m.Shapes[mr.Shape]
	kind := s.Type
	if kind == "list" {
		kind = "list of " + g.m.Shapes[s.Member.Shape].Type
	}
	switch kind = strings.Replace(kind, "long", "integer", 1); mr.Location + " " + kind {
	case "uri string":
		if !strings.Contains(op.HTTP.RequestURI, "{"+wire+"}") {
			return "", fmt.Errorf("URI label {%s} is not in requestUri %q", wire, op.HTTP.RequestURI)
		}
		return fmt.Sprintf("in.%s = pathString(r, %q)", mname, wire), nil
	case "querystring string":
		return fmt.Sprintf("in.%s = queryString(q, %q)", mname, wire), nil
	case "querystring integer":
		return fmt.Sprintf("in.%s = queryInt(&vs, q, %q, %q)", mname, wire, path), nil
	case "querystring list of string":
		return fmt.Sprintf("in.%s = queryList(q, %q)", mname, wire), nil
	case "header string":
		return fmt.Sprintf("in.%s = headerString(r.Header, %q)", mname, wire), nil
	case "header integer":
		return fmt.Sprintf("in.%s = headerInt(&vs, r.Header, %q, %q)", mname, wire, path), nil
	}
	return "", fmt.Errorf("binding a %s from location %q is not supported", kind, mr.Location)
}
