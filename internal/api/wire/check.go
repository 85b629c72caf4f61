package wire

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The check helpers below are called by the generated validate methods; each
// appends AWS-worded violations. A negative limit means the model sets none.

// checkLen enforces string min/max length in Unicode code points, as AWS counts.
func checkLen(vs *violations, path, v string, lo, hi int) {
	n := utf8.RuneCountInString(v)
	if lo >= 0 && n < lo {
		vs.add(path, v, fmt.Sprintf("Member must have length greater than or equal to %d", lo))
	}
	if hi >= 0 && n > hi {
		vs.add(path, v, fmt.Sprintf("Member must have length less than or equal to %d", hi))
	}
}

// checkPattern enforces a model pattern. allow must match (anywhere, unless
// anchored, as AWS does); deny, when the model pattern opened with a negative
// lookahead RE2 cannot express, must not match. The message quotes the model
// pattern as written.
func checkPattern(vs *violations, path, v string, allow, deny *regexp.Regexp, pattern string) {
	if !allow.MatchString(v) || (deny != nil && deny.MatchString(v)) {
		vs.add(path, v, "Member must satisfy regular expression pattern: "+pattern)
	}
}

// checkEnum enforces membership in a model enum.
func checkEnum(vs *violations, path, v string, set []string) {
	if !slices.Contains(set, v) {
		vs.add(path, v, "Member must satisfy enum value set: ["+strings.Join(set, ", ")+"]")
	}
}

// checkMin enforces a numeric lower bound; limit is the bound as the model writes it.
func checkMin[T int64 | float64](vs *violations, path string, v, lo T, limit string) {
	if v < lo {
		vs.add(path, formatNumber(v), "Member must have value greater than or equal to "+limit)
	}
}

// checkMax enforces a numeric upper bound; limit is the bound as the model writes it.
func checkMax[T int64 | float64](vs *violations, path string, v, hi T, limit string) {
	if v > hi {
		vs.add(path, formatNumber(v), "Member must have value less than or equal to "+limit)
	}
}

// checkItems enforces list min/max item counts; AWS words these as lengths.
func checkItems[T any](vs *violations, path string, v []T, lo, hi int) {
	if lo >= 0 && len(v) < lo {
		vs.add(path, formatList(v), fmt.Sprintf("Member must have length greater than or equal to %d", lo))
	}
	if hi >= 0 && len(v) > hi {
		vs.add(path, formatList(v), fmt.Sprintf("Member must have length less than or equal to %d", hi))
	}
}

// itemPath is the AWS path of a list element: "tags.1.member" (1-based).
func itemPath(path string, i int) string {
	return path + "." + strconv.Itoa(i+1) + ".member"
}

func formatNumber[T int64 | float64](v T) string {
	switch n := any(v).(type) {
	case int64:
		return strconv.FormatInt(n, 10)
	case float64:
		return formatDouble(n)
	}
	return fmt.Sprint(v)
}

// formatList renders a list for a message as "[a, b]"; structure elements
// are shown as compact JSON.
func formatList[T any](v []T) string {
	parts := make([]string, len(v))
	for i, e := range v {
		switch x := any(e).(type) {
		case string:
			parts[i] = x
		case int64:
			parts[i] = strconv.FormatInt(x, 10)
		default:
			b, err := json.Marshal(x)
			if err != nil {
				b = []byte("?")
			}
			parts[i] = string(b)
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
