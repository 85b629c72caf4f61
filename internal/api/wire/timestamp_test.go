package wire

import (
	"encoding/json"
	"testing"
	"time"
)

func TestTimestampRoundTrip(t *testing.T) {
	tests := []struct {
		json string
		time time.Time
	}{
		{"1641491892", time.Unix(1641491892, 0)},
		{"1641491892.375", time.Unix(1641491892, 375e6)},
		{"1641491892.5", time.Unix(1641491892, 500e6)},
		{"0", time.Unix(0, 0)},
		{"-0.5", time.Unix(0, -500e6)},
	}
	for _, tt := range tests {
		b, err := json.Marshal(NewTimestamp(tt.time))
		if err != nil || string(b) != tt.json {
			t.Errorf("Marshal(%v) = %s, %v; want %s", tt.time, b, err, tt.json)
		}
		var ts Timestamp
		if err := json.Unmarshal([]byte(tt.json), &ts); err != nil || !ts.Time().Equal(tt.time) {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v", tt.json, ts.Time(), err, tt.time)
		}
	}
}

func TestTimestampMarshal(t *testing.T) {
	// Sub-millisecond digits are dropped, never rendered with an exponent.
	b, _ := json.Marshal(Timestamp(time.Unix(1641491892, 123456789)))
	if string(b) != "1641491892.123" {
		t.Errorf("got %s", b)
	}
	// As a struct field (value or pointer) the same encoding is used.
	b, _ = json.Marshal(FileSystemSize{Value: ptr(int64(6144)), Timestamp: NewTimestamp(time.Unix(1641491892, 0))})
	if string(b) != `{"Value":6144,"Timestamp":1641491892}` {
		t.Errorf("got %s", b)
	}
}

func TestTimestampUnmarshal(t *testing.T) {
	for in, want := range map[string]time.Time{
		"1641491892.123456789": time.Unix(1641491892, 123456789),
		"1.641491892e9":        time.Unix(1641491892, 0),
		"1641491892.0":         time.Unix(1641491892, 0),
	} {
		var ts Timestamp
		if err := json.Unmarshal([]byte(in), &ts); err != nil || !ts.Time().Equal(want) {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v", in, ts.Time(), err, want)
		}
	}
	for _, bad := range []string{`"1641491892"`, `true`, `{}`} {
		var ts Timestamp
		if err := json.Unmarshal([]byte(bad), &ts); err == nil {
			t.Errorf("Unmarshal(%s) succeeded", bad)
		}
	}
}
