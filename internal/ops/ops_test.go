package ops

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestHealthAndReadiness(t *testing.T) {
	failing := errors.New("disk full")
	var fail bool
	checks := []Check{
		{Name: "store", Run: func(context.Context) error { return nil }},
		{Name: "data directory", Run: func(context.Context) error {
			if fail {
				return failing
			}
			return nil
		}},
		{Name: "slow", Run: func(ctx context.Context) error { return nil }},
	}
	srv := httptest.NewServer(Handler(checks, time.Second, nil))
	defer srv.Close()
	get := func(path string) (*http.Response, Readiness) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rd Readiness
		if path == "/readyz" {
			if err := json.NewDecoder(resp.Body).Decode(&rd); err != nil {
				t.Fatal(err)
			}
		}
		return resp, rd
	}
	if resp, _ := get("/healthz"); resp.StatusCode != 200 {
		t.Fatalf("/healthz %d", resp.StatusCode)
	}
	if resp, rd := get("/readyz"); resp.StatusCode != 200 || !rd.Ready || len(rd.Checks) != 3 {
		t.Fatalf("/readyz %d %+v", resp.StatusCode, rd)
	}
	fail = true
	resp, rd := get("/readyz")
	if resp.StatusCode != http.StatusServiceUnavailable || rd.Ready || rd.Checks[1].OK || rd.Checks[1].Error != "disk full" || !rd.Checks[0].OK {
		t.Fatalf("failing check: %d %+v", resp.StatusCode, rd)
	}
	if resp, _ := get("/metrics"); resp.StatusCode != 404 {
		t.Fatalf("/metrics without metrics: %d", resp.StatusCode)
	}
	if resp, _ := get("/nope"); resp.StatusCode != 404 {
		t.Fatalf("/nope %d", resp.StatusCode)
	}
}

// A check that hangs fails at the timeout instead of hanging /readyz.
func TestHungCheckFails(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	rd := Run(context.Background(), nil)
	if !rd.Ready {
		t.Fatal("no checks: not ready")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	rd = Run(ctx, []Check{{Name: "hung", Run: func(context.Context) error { <-block; return nil }}})
	if rd.Ready || rd.Checks[0].OK || time.Since(start) > 5*time.Second {
		t.Fatalf("hung check: %+v after %v", rd, time.Since(start))
	}
}
