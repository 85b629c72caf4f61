package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Timestamp is a model timestamp. It is a defined type over time.Time (not a
// wrapper struct) so conversions are free; the rest-json protocol carries
// timestamps as epoch seconds, which is what the JSON methods speak.
type Timestamp time.Time

// NewTimestamp returns t as a *Timestamp, ready for an optional struct field.
func NewTimestamp(t time.Time) *Timestamp {
	ts := Timestamp(t)
	return &ts
}

// Time returns the timestamp as a time.Time.
func (t Timestamp) Time() time.Time { return time.Time(t) }

// String formats the timestamp as RFC 3339 for logs and test failures.
func (t Timestamp) String() string { return time.Time(t).Format(time.RFC3339Nano) }

// MarshalJSON writes epoch seconds as a plain JSON number with at most a
// millisecond fraction (1641491892 or 1641491892.375), the precision and
// shape the AWS SDKs parse; sub-millisecond digits are dropped.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	sign := ""
	if ms < 0 {
		sign, ms = "-", -ms
	}
	s := sign + strconv.FormatInt(ms/1000, 10)
	if frac := ms % 1000; frac != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%03d", frac), "0")
	}
	return []byte(s), nil
}

// UnmarshalJSON accepts epoch seconds as a JSON number, with or without a
// fraction. The fraction is parsed digit by digit rather than through
// float64 so that millisecond values survive exactly; exponent forms fall
// back to float parsing. JSON null leaves the value unchanged.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		return &json.UnmarshalTypeError{Value: jsonKind(b), Type: reflect.TypeFor[Timestamp]()}
	}
	s := string(b)
	if strings.ContainsAny(s, "eE") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("parse timestamp %s: %w", s, err)
		}
		sec := int64(f)
		*t = Timestamp(time.Unix(sec, int64((f-float64(sec))*1e9)).UTC())
		return nil
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return fmt.Errorf("parse timestamp %s: %w", b, err)
	}
	frac = (frac + "000000000")[:9]
	nsec, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return fmt.Errorf("parse timestamp %s: %w", b, err)
	}
	if neg {
		sec, nsec = -sec, -nsec
	}
	*t = Timestamp(time.Unix(sec, nsec).UTC())
	return nil
}

// jsonKind names the kind of a JSON value for type-mismatch errors.
func jsonKind(b []byte) string {
	if len(b) == 0 {
		return "empty value"
	}
	switch b[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	}
	return "value " + string(b)
}
