package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// rePattern is a model pattern made RE2-compatible: a value must match allow
// and, when deny is set, must not match deny.
type rePattern struct{ allow, deny string }

// reviewedPatterns maps model patterns that RE2 cannot compile, and that the
// generic lookahead rule does not cover, to hand-checked equivalents. Keys
// are exact, so a changed model pattern fails generation until reviewed.
var reviewedPatterns = map[string]rePattern{
	// Path (access point root directory): "(?!\.)+" repeats a zero-width
	// assertion, so it means a single "(?!\.)": a segment's first character
	// after "/" is not ".". Folding that into the character class gives the
	// same language.
	"^(\\/|(\\/(?!\\.)+[^$#<>;`|&?{}^*/\\n]+){1,4})$": {
		allow: "^(\\/|(\\/[^$#<>;`|&?{}^*/\\n.][^$#<>;`|&?{}^*/\\n]*){1,4})$",
	},
}

// translatePattern turns a model (Java-flavoured) pattern into Go regexps.
// Patterns RE2 compiles are used as written; a leading negative lookahead
// "^(?!X)REST" becomes deny "^(?:X)" plus allow "^REST"; any other pattern
// RE2 rejects must be in reviewedPatterns, or generation fails.
func translatePattern(p string) (rePattern, error) {
	if _, err := regexp.Compile(p); err == nil {
		return rePattern{allow: p}, nil
	}
	rp, ok := reviewedPatterns[p]
	if !ok && strings.HasPrefix(p, "^(?!") {
		end := closingParen(p, 1)
		if end < 0 {
			return rePattern{}, fmt.Errorf("pattern %q: unbalanced lookahead", p)
		}
		rp, ok = rePattern{allow: "^" + p[end+1:], deny: "^(?:" + p[4:end] + ")"}, true
	}
	if !ok {
		return rePattern{}, fmt.Errorf("pattern %q is not RE2 syntax and has no translation; add a reviewed equivalent to reviewedPatterns", p)
	}
	for _, re := range []string{rp.allow, rp.deny} {
		if _, err := regexp.Compile(re); err != nil {
			return rePattern{}, fmt.Errorf("pattern %q: translation %q does not compile: %w", p, re, err)
		}
	}
	return rp, nil
}

// closingParen returns the index of the ")" matching the "(" at p[open],
// skipping escaped characters and character classes, or -1.
func closingParen(p string, open int) int {
	depth, inClass := 0, false
	for i := open; i < len(p); i++ {
		switch c := p[i]; {
		case c == '\\':
			i++
		case inClass || c == '[':
			inClass = c != ']'
		case c == '(':
			depth++
		case c == ')':
			if depth--; depth == 0 {
				return i
			}
		}
	}
	return -1
}

// emitPatterns compiles each reachable shape's pattern once, at package level.
func (g *gen) emitPatterns() error {
	g.imports["regexp"] = true
	g.p("// Model patterns, compiled once. An rx...Deny regexp stands in for a")
	g.p("// leading negative lookahead, which RE2 lacks: values matching it fail.")
	g.p("var (")
	for _, name := range g.sortedShapes("string") {
		if g.m.Shapes[name].Pattern == "" {
			continue
		}
		rp, err := translatePattern(g.m.Shapes[name].Pattern)
		if err != nil {
			return fmt.Errorf("shape %s: %w", name, err)
		}
		g.p("rx%s = regexp.MustCompile(%s)", name, goLiteral(rp.allow))
		if rp.deny != "" {
			g.p("rx%sDeny = regexp.MustCompile(%s)", name, goLiteral(rp.deny))
		}
	}
	g.p(")\n")
	return nil
}

// needsCheck reports whether values of shape name carry constraints; a
// structure always has a validate method, so it counts.
func (g *gen) needsCheck(name string) bool {
	s := g.m.Shapes[name]
	return s.Type == "structure" || s.Min != nil || s.Max != nil || s.Pattern != "" || len(s.Enum) > 0 ||
		(s.Type == "list" && g.needsCheck(s.Member.Shape))
}

// checkCall is the statement validating member expr (of shape name) at path,
// or "" when the shape has no constraints.
func (g *gen) checkCall(name, expr, path string) string {
	switch {
	case !g.needsCheck(name):
		return ""
	case g.m.Shapes[name].Type == "structure":
		return fmt.Sprintf("%s.validate(vs, %s+\".\")", expr, path)
	case g.m.Shapes[name].Type == "list":
		return fmt.Sprintf("check%s(vs, %s, %s)", name, path, expr)
	}
	return fmt.Sprintf("check%s(vs, %s, *%s)", name, path, expr)
}

// emitValidate emits Validate and the recursive validate for structure name;
// prefix is the AWS path of the structure itself, "" or ending in ".".
func (g *gen) emitValidate(name string, s *shape) error {
	g.p("// Validate checks s against the model's constraints, returning a *ValidationError.")
	g.p("func (s *%s) Validate() error {", name)
	g.p("if s == nil { return nil }")
	g.p("var vs violations\ns.validate(&vs, \"\")\nreturn vs.err()\n}\n")
	g.p("func (s *%s) validate(vs *violations, prefix string) {", name)
	for _, mname := range s.Members.Keys {
		mr := s.Members.Values[mname]
		if ms := g.m.Shapes[mr.Shape]; ms.Type == "map" && (g.needsCheck(mr.Shape) || g.needsCheck(ms.Key.Shape) || g.needsCheck(ms.Value.Shape)) {
			return fmt.Errorf("structure %s member %s: constraints on maps are not supported", name, mname)
		}
		path := fmt.Sprintf("prefix+%q", wireName(mname, mr))
		check := g.checkCall(mr.Shape, "s."+mname, path)
		switch {
		case s.isRequired(mname) && check != "":
			g.p("if s.%s == nil { vs.null(%s) } else { %s }", mname, path, check)
		case s.isRequired(mname):
			g.p("if s.%s == nil { vs.null(%s) }", mname, path)
		case check != "":
			g.p("if s.%s != nil { %s }", mname, check)
		}
	}
	g.p("}\n")
	return nil
}

// emitCheckers emits one check function per constrained scalar or list shape.
func (g *gen) emitCheckers() error {
	for _, name := range g.sortedShapes("string", "integer", "long", "double", "float", "list") {
		s := g.m.Shapes[name]
		if !g.needsCheck(name) {
			continue
		}
		integral := s.Type != "double" && s.Type != "float"
		lo, err := limit(s.Min, integral)
		if err != nil {
			return fmt.Errorf("shape %s min: %w", name, err)
		}
		hi, err := limit(s.Max, integral)
		if err != nil {
			return fmt.Errorf("shape %s max: %w", name, err)
		}
		switch s.Type {
		case "string":
			g.p("func check%s(vs *violations, path, v string) {", name)
			if s.Min != nil || s.Max != nil {
				g.p("checkLen(vs, path, v, %s, %s)", lo, hi)
			}
			if s.Pattern != "" {
				deny := "nil"
				if rp, _ := translatePattern(s.Pattern); rp.deny != "" {
					deny = "rx" + name + "Deny"
				}
				g.p("checkPattern(vs, path, v, rx%s, %s, %s)", name, deny, goLiteral(s.Pattern))
			}
			if len(s.Enum) > 0 {
				g.p("checkEnum(vs, path, v, Enum%s)", name)
			}
		case "list":
			typ, err := g.goType(name)
			if err != nil {
				return err
			}
			g.p("func check%s(vs *violations, path string, v %s) {", name, typ)
			if s.Min != nil || s.Max != nil {
				g.p("checkItems(vs, path, v, %s, %s)", lo, hi)
			}
			if elem := s.Member.Shape; g.m.Shapes[elem].Type == "structure" {
				g.p("for i := range v { v[i].validate(vs, itemPath(path, i)+\".\") }")
			} else if g.needsCheck(elem) {
				g.p("for i := range v { check%s(vs, itemPath(path, i), v[i]) }", elem)
			}
		default:
			typ, _ := scalarType(s.Type)
			g.p("func check%s(vs *violations, path string, v %s) {", name, typ)
			if s.Min != nil {
				g.p("checkMin(vs, path, v, %s, %q)", lo, lo)
			}
			if s.Max != nil {
				g.p("checkMax(vs, path, v, %s, %q)", hi, hi)
			}
		}
		g.p("}\n")
	}
	return nil
}

// limit renders a min/max as a Go literal spelled as in the model ("1.0"
// stays "1.0" in messages), or "-1" when absent. Lengths and integer shapes
// need integral limits.
func limit(n *json.Number, integral bool) (string, error) {
	if n == nil {
		return "-1", nil
	}
	if _, err := n.Int64(); integral && err != nil {
		return "", fmt.Errorf("limit %s is not an integer", n)
	}
	return n.String(), nil
}
