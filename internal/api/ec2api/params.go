package ec2api

import (
	"encoding/base64"
	"slices"
	"strconv"
	"strings"

	"github.com/efsd/efsd/internal/glob"
)

// Bounds on what one request may list; EC2 documents 200 values per
// filter and 1000 results per page.
const (
	maxListed       = 1000
	maxFilters      = 50
	maxFilterValues = 200
)

// list reads the query list key.1, key.2, … in index order. Indexes need
// not be dense (the CLI numbers from 1, hand-made requests may skip).
func list(c *call, key string) ([]string, error) {
	type kv struct {
		i int
		v string
	}
	var items []kv
	for k, vs := range c.form {
		rest, ok := strings.CutPrefix(k, key+".")
		if !ok {
			continue
		}
		i, err := strconv.Atoi(rest)
		if err != nil || i < 1 {
			return nil, errorf("InvalidParameterValue", "%s is not a parameter of this action.", k)
		}
		items = append(items, kv{i, vs[0]})
		if len(items) > maxListed {
			return nil, errorf("InvalidParameterValue", "%s lists more than %d values.", key, maxListed)
		}
	}
	slices.SortFunc(items, func(a, b kv) int { return a.i - b.i })
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.v
	}
	return out, nil
}

// filter is one Filter.N: a name and the values any of which may match.
type filter struct {
	name   string
	values []string
}

// filters reads Filter.N.Name / Filter.N.Value.M and checks each name
// against known (tag filters, tag:Key and tag-key, are always accepted and
// match nothing: efsd's network resources carry no tags).
func filters(c *call, known map[string]bool) ([]filter, error) {
	idx := map[int]bool{}
	for k := range c.form {
		rest, ok := strings.CutPrefix(k, "Filter.")
		if !ok {
			continue
		}
		n, _, _ := strings.Cut(rest, ".")
		i, err := strconv.Atoi(n)
		if err != nil || i < 1 {
			return nil, errorf("InvalidParameterValue", "%s is not a parameter of this action.", k)
		}
		idx[i] = true
		if len(idx) > maxFilters {
			return nil, errorf("InvalidParameterValue", "The request has more than %d filters.", maxFilters)
		}
	}
	var out []filter
	for _, i := range slices.Sorted(func(yield func(int) bool) {
		for i := range idx {
			if !yield(i) {
				return
			}
		}
	}) {
		prefix := "Filter." + strconv.Itoa(i)
		name := kebab(c.form.Get(prefix + ".Name"))
		if name == "" {
			return nil, errorf("InvalidParameterValue", "%s.Name is missing.", prefix)
		}
		if !known[name] && name != "tag-key" && name != "tag-value" && !strings.HasPrefix(name, "tag:") {
			return nil, errorf("InvalidParameterValue", "The filter '%s' is invalid", name)
		}
		values, err := list(c, prefix+".Value")
		if err != nil {
			return nil, err
		}
		if len(values) > maxFilterValues {
			return nil, errorf("InvalidParameterValue", "The filter '%s' has more than %d values.", name, maxFilterValues)
		}
		out = append(out, filter{name: name, values: values})
	}
	return out, nil
}

// kebab writes a camelCase filter name (isDefault, availabilityZone, which
// EC2 accepts beside is-default and availability-zone, and Terraform's
// provider sends) the kebab-case way; tag:Key filters keep their key.
func kebab(name string) string {
	if strings.HasPrefix(name, "tag:") {
		return name
	}
	var b strings.Builder
	for i, r := range name {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('-')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// attrs gives a resource's values for a filter name.
type attrs func(name string) []string

// matches reports whether a resource passes every filter: some value of
// the resource matches some value of each filter, with EC2's * and ?
// wildcards.
func matches(fs []filter, a attrs) bool {
	for _, f := range fs {
		have := a(f.name)
		ok := false
		for _, want := range f.values {
			for _, v := range have {
				if glob.Match(want, v) {
					ok = true
				}
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func boolString(b bool) string { return strconv.FormatBool(b) }

// page is MaxResults/NextToken for an action that pages; ids is the ID
// list parameter, which EC2 does not allow together with MaxResults.
type page struct {
	max   int // 0: everything
	after string
}

func paging(c *call, idParam string, ids []string) (page, error) {
	var p page
	if m := c.form.Get("MaxResults"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 5 || n > 1000 {
			return p, errorf("InvalidParameterValue", "Value ( %s ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.", m)
		}
		if len(ids) > 0 {
			return p, errorf("InvalidParameterCombination", "The parameter %s cannot be used with the parameter maxResults", idParam)
		}
		p.max = n
	}
	if t := c.form.Get("NextToken"); t != "" {
		raw, err := base64.RawURLEncoding.DecodeString(t)
		after, ok := strings.CutPrefix(string(raw), "efsd1:")
		if err != nil || !ok || after == "" {
			return p, errorf("InvalidPaginationToken", "Invalid pagination token: %s", t)
		}
		p.after = after
	}
	return p, nil
}

// apply pages items (sorted by id) and returns the page and the token of
// the next one ("" at the end).
func apply[T any](p page, items []T, id func(T) string) ([]T, string) {
	slices.SortFunc(items, func(a, b T) int { return strings.Compare(id(a), id(b)) })
	if p.after != "" {
		i, _ := slices.BinarySearchFunc(items, p.after, func(t T, s string) int {
			if c := strings.Compare(id(t), s); c != 0 {
				return c
			}
			return -1 // items equal to after come before the position: skip them
		})
		items = items[i:]
	}
	if p.max == 0 || len(items) <= p.max {
		return items, ""
	}
	items = items[:p.max]
	return items, base64.RawURLEncoding.EncodeToString([]byte("efsd1:" + id(items[len(items)-1])))
}
