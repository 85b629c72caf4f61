package main

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"
)

// efsd version and efsd --version print the build's own description.
func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		var out bytes.Buffer
		m := &Main{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}
		if err := m.Run(context.Background(), []string{arg}); err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		got := strings.TrimSpace(out.String())
		if !strings.HasPrefix(got, "efsd ") || !strings.Contains(got, runtime.Version()) || strings.Contains(got, "\n") {
			t.Errorf("%s printed %q, want one line naming efsd and %s", arg, got, runtime.Version())
		}
	}
}
