// Package ops serves what operators and orchestrators ask of a server —
// is it alive, is it ready — on a listener of its own, apart from the EFS
// endpoint (whose catch-all answers every unknown path with an AWS error, as
// SDKs expect). /healthz answers as long as the process serves HTTP;
// /readyz runs the daemon's readiness checks and answers 503, naming the
// failing ones, when any fails. /metrics serves Prometheus metrics (see
// Metrics and docs/metrics.md).
package ops

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// Check is one readiness condition, e.g. "the store answers".
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// Result is one check's outcome in a /readyz answer.
type Result struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// Readiness is the /readyz answer.
type Readiness struct {
	Ready  bool     `json:"ready"`
	Checks []Result `json:"checks"`
}

// Handler serves /healthz and /readyz, and /metrics unless metrics is nil.
// Each check gets timeout; a check that does not answer in time has failed
// (a hung store is not ready).
func Handler(checks []Check, timeout time.Duration, metrics *Metrics) http.Handler {
	mux := http.NewServeMux()
	if metrics != nil {
		mux.Handle("GET /metrics", metrics.Handler())
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		rd := Run(ctx, checks)
		w.Header().Set("Content-Type", "application/json")
		if !rd.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(rd)
	})
	return mux
}

// Run runs every check at once and reports them in order.
func Run(ctx context.Context, checks []Check) Readiness {
	rd := Readiness{Ready: true, Checks: make([]Result, len(checks))}
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := make(chan error, 1)
			go func() { done <- c.Run(ctx) }()
			var err error
			select {
			case err = <-done:
			case <-ctx.Done():
				err = ctx.Err()
			}
			rd.Checks[i] = Result{Name: c.Name, OK: err == nil}
			if err != nil {
				rd.Checks[i].Error = err.Error()
			}
		}()
	}
	wg.Wait()
	for _, r := range rd.Checks {
		rd.Ready = rd.Ready && r.OK
	}
	return rd
}
