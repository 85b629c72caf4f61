package console

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/efsd/efsd/internal/efs"
)

// fakeService has one file system and the configurations reps.
type fakeService struct {
	fs   *efs.FileSystem
	reps []*efs.Replication
}

func (f *fakeService) DescribeFileSystems(_ context.Context, p efs.Principal, _ efs.DescribeFileSystemsInput) (*efs.DescribeFileSystemsOutput, error) {
	if p.Account != f.fs.Account || p.Region != f.fs.Region {
		return &efs.DescribeFileSystemsOutput{}, nil
	}
	return &efs.DescribeFileSystemsOutput{FileSystems: []*efs.FileSystem{f.fs}}, nil
}

func (f *fakeService) DescribeMountTargets(context.Context, efs.Principal, efs.DescribeMountTargetsInput) (*efs.MountTargetPage, error) {
	return &efs.MountTargetPage{}, nil
}

func (f *fakeService) DescribeAccessPoints(context.Context, efs.Principal, string, string, string, int) (*efs.AccessPointPage, error) {
	return &efs.AccessPointPage{}, nil
}

func (f *fakeService) Replications(context.Context) ([]*efs.Replication, error) { return f.reps, nil }

// What users put in names is shown, never run; the page forbids inline
// script and other origins.
func TestPageEscapesAndLocksDown(t *testing.T) {
	svc := &fakeService{fs: &efs.FileSystem{ID: "fs-1", Account: "1", Region: "us-east-1", State: efs.StateAvailable,
		Tags: []efs.Tag{{Key: "Name", Value: `<img src=x onerror=alert(1)>`}}}}
	c := New(Options{Service: svc, Accounts: []string{"1"}, Regions: []string{"us-east-1"}})
	for _, path := range []string{"/console/", "/console/body"} {
		w := httptest.NewRecorder()
		c.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		body := w.Body.String()
		if w.Code != 200 || !strings.Contains(body, "fs-1") {
			t.Fatalf("%s: %d %s", path, w.Code, body)
		}
		if strings.Contains(body, "<img src=x") || !strings.Contains(body, "&lt;img src=x") {
			t.Fatalf("%s: the name is not escaped: %s", path, body)
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Fatalf("%s: CSP %q", path, csp)
		}
	}
	w := httptest.NewRecorder()
	c.ServeHTTP(w, httptest.NewRequest("POST", "/console/", nil))
	if w.Code != 405 {
		t.Fatalf("POST: %d", w.Code)
	}
}

// The sampler keeps a window of samples per configuration, marks times
// without a LastReplicatedTimestamp, and forgets configurations that are
// gone.
func TestSamplerWindow(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rep := &efs.Replication{ID: "fs-1"}
	svc := &fakeService{fs: &efs.FileSystem{ID: "fs-1"}, reps: []*efs.Replication{rep}}
	c := New(Options{Service: svc, Now: func() time.Time { return now }, SampleEvery: 10 * time.Second, Window: time.Hour})
	for i := range 500 {
		if i == 10 {
			rep.LastReplicatedAt = now.Add(-3 * time.Second)
		}
		c.sample(t.Context())
		now = now.Add(10 * time.Second)
	}
	s := c.history["fs-1"]
	if len(s.at) != 361 || cap(s.at) > 2*len(s.at)+16 {
		t.Fatalf("%d samples kept (room for %d), want an hour's 361", len(s.at), cap(s.at))
	}
	if s.lag[0] < 0 || s.lag[len(s.lag)-1] < s.lag[0] {
		t.Fatalf("lags %v … %v", s.lag[0], s.lag[len(s.lag)-1])
	}
	if svg := string(plot(s, now, time.Hour)); !strings.Contains(svg, "<polyline") {
		t.Fatalf("plot: %s", svg)
	}
	svc.reps = nil
	c.sample(t.Context())
	if len(c.history) != 0 {
		t.Fatalf("history of a deleted configuration kept")
	}
}
