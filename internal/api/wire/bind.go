package wire

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
)

// The bind helpers below are called by the generated Decode functions.

// decodeBody fills the body members of in; an empty body leaves them unset.
// Unknown members are ignored, as AWS does for forward compatibility.
func decodeBody(body []byte, in any) error {
	if len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, in); err != nil {
		return newDecodeError(err)
	}
	return nil
}

// pathString binds a URI label. ServeMux wildcards never match an empty
// segment, so "" means the label is absent (route not registered with it).
func pathString(r *http.Request, name string) *string {
	v := r.PathValue(name)
	if v == "" {
		return nil
	}
	return &v
}

// queryString binds a query parameter; a present but empty value is kept so
// that length checks reject it.
func queryString(q url.Values, name string) *string {
	vs, ok := q[name]
	if !ok || len(vs) == 0 {
		return nil
	}
	return &vs[0]
}

// queryList binds every repeated value of a list-typed query parameter.
func queryList(q url.Values, name string) []string {
	vs, ok := q[name]
	if !ok {
		return nil
	}
	return slices.Clone(vs)
}

// queryInt binds an integer query parameter, recording a violation for a
// value that is not a base-10 integer.
func queryInt(vs *violations, q url.Values, name, path string) *int64 {
	s := queryString(q, name)
	if s == nil {
		return nil
	}
	n, err := strconv.ParseInt(*s, 10, 64)
	if err != nil {
		vs.add(path, *s, "Member must be an integer")
		return nil
	}
	return &n
}

// headerString binds a header member.
func headerString(h http.Header, name string) *string {
	vs := h.Values(name)
	if len(vs) == 0 {
		return nil
	}
	return &vs[0]
}

// headerInt binds an integer header member.
func headerInt(vs *violations, h http.Header, name, path string) *int64 {
	s := headerString(h, name)
	if s == nil {
		return nil
	}
	n, err := strconv.ParseInt(*s, 10, 64)
	if err != nil {
		vs.add(path, *s, "Member must be an integer")
		return nil
	}
	return &n
}
