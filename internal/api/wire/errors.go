package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Value truncation limits for violation messages: long values would bloat
// error responses, and file system policies may hold data callers would not
// want echoed back in full.
const (
	maxValueRunes  = 256
	maxPolicyRunes = 64
)

// Violation is one failed model constraint.
type Violation struct {
	Path       string // AWS-style member path, e.g. "destinations.1.member.region"
	Value      string // rendered (and possibly truncated) value; unused when Null
	Null       bool   // the member was required but absent
	Constraint string // e.g. "Member must not be null"
}

// String renders the violation the way AWS does, e.g.
// "Value 'x' at 'fileSystemId' failed to satisfy constraint: Member must ...".
func (v Violation) String() string {
	if v.Null {
		return fmt.Sprintf("Value null at '%s' failed to satisfy constraint: %s", v.Path, v.Constraint)
	}
	return fmt.Sprintf("Value '%s' at '%s' failed to satisfy constraint: %s", v.Value, v.Path, v.Constraint)
}

// ValidationError is returned by Validate and the Decode functions when a
// request breaks the model's constraints. The server maps it to EFS's
// 400 BadRequest / ValidationException with Error() as the message.
type ValidationError struct {
	Violations []Violation
}

// Error produces AWS's message: "N validation error(s) detected: a; b".
func (e *ValidationError) Error() string {
	noun := "errors"
	if len(e.Violations) == 1 {
		noun = "error"
	}
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.String()
	}
	return fmt.Sprintf("%d validation %s detected: %s", len(e.Violations), noun, strings.Join(parts, "; "))
}

// DecodeError reports a request body that is not valid JSON or carries a
// member of the wrong JSON type; the request never reached validation.
type DecodeError struct {
	Member string // dotted body member path when known, e.g. "Tags.Key"
	Msg    string
	Err    error
}

func (e *DecodeError) Error() string { return e.Msg }
func (e *DecodeError) Unwrap() error { return e.Err }

// newDecodeError classifies a json.Unmarshal failure.
func newDecodeError(err error) *DecodeError {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return &DecodeError{Msg: "request body is not valid JSON: " + err.Error(), Err: err}
	case errors.As(err, &typ):
		member := typ.Field
		if member == "" {
			return &DecodeError{Msg: fmt.Sprintf("request body must be a JSON object, not a JSON %s", typ.Value), Err: err}
		}
		return &DecodeError{
			Member: member,
			Msg:    fmt.Sprintf("request body member %s has the wrong type: got JSON %s, want %s", member, typ.Value, wantKind(typ.Type)),
			Err:    err,
		}
	}
	return &DecodeError{Msg: "request body could not be decoded: " + err.Error(), Err: err}
}

// wantKind describes the JSON a Go field type accepts.
func wantKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeFor[Timestamp]():
		return "a number (epoch seconds)"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Int64:
		return "an integer"
	case t.Kind() == reflect.Float64:
		return "a number"
	case t.Kind() == reflect.Bool:
		return "a boolean"
	case t.Kind() == reflect.Slice:
		return "an array"
	}
	return "an object"
}

// violations accumulates failures while a structure is walked.
type violations []Violation

// add records a failed constraint, truncating the value for the message.
func (vs *violations) add(path, value, constraint string) {
	limit := maxValueRunes
	if last := path[strings.LastIndexByte(path, '.')+1:]; last == "policy" {
		limit = maxPolicyRunes
	}
	*vs = append(*vs, Violation{Path: path, Value: truncate(value, limit), Constraint: constraint})
}

// null records a missing required member.
func (vs *violations) null(path string) {
	*vs = append(*vs, Violation{Path: path, Null: true, Constraint: "Member must not be null"})
}

// err returns nil or a *ValidationError; never a typed nil.
func (vs violations) err() error {
	if len(vs) == 0 {
		return nil
	}
	return &ValidationError{Violations: vs}
}

// truncate cuts s to limit runes, marking the cut with "...".
func truncate(s string, limit int) string {
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	n := 0
	for i := range s {
		if n == limit {
			return s[:i] + "..."
		}
		n++
	}
	return s
}

// formatDouble renders a double like Java's Double.toString does for
// ordinary magnitudes ("0.5", "1.0"), matching AWS's messages.
func formatDouble(f float64) string {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".NI") {
		s += ".0"
	}
	return s
}
