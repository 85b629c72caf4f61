package glob

import (
	"strings"
	"testing"
	"time"
)

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"", "", true}, {"", "a", false}, {"*", "", true}, {"*", "anything", true},
		{"elasticfilesystem:Client*", "elasticfilesystem:ClientMount", true},
		{"elasticfilesystem:Client*", "elasticfilesystem:DescribeFileSystems", false},
		{"us-east-1?", "us-east-1a", true}, {"us-east-1?", "us-east-1", false},
		{"a*b*c", "aXXbYYc", true}, {"a*b*c", "aXXbYY", false},
		{"é?", "éü", true}, // ? is one character, not one byte
		{"sg-*", "sg-0123", true}, {"SG-*", "sg-0123", false},
	} {
		if got := Match(tc.p, tc.s); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.p, tc.s, got, tc.want)
		}
	}
}

// A pattern built to make a naive matcher backtrack exponentially stays fast.
func TestMatchHostilePattern(t *testing.T) {
	p := strings.Repeat("*a", 200) + "b"
	s := strings.Repeat("a", 5000)
	start := time.Now()
	if Match(p, s) {
		t.Fatal("matched")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v", d)
	}
}
