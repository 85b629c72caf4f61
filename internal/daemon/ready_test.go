package daemon

import (
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/efsd/efsd/internal/ops"
)

// /healthz answers while efsd serves; /readyz says ready, and stops saying
// so, naming the data directory, once the data directory takes no writes.
func TestReadiness(t *testing.T) {
	dir := t.TempDir()
	d, err := Start(t.Context(), Config{Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	get := func(path string) (int, ops.Readiness) {
		t.Helper()
		resp, err := http.Get("http://" + d.AdminAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rd ops.Readiness
		if path == "/readyz" {
			if err := json.NewDecoder(resp.Body).Decode(&rd); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode, rd
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("/healthz %d", code)
	}
	if code, rd := get("/readyz"); code != 200 || !rd.Ready || len(rd.Checks) != 4 {
		t.Fatalf("/readyz %d %+v", code, rd)
	}
	if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot make the data directory immutable here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", dir).Run() })
	code, rd := get("/readyz")
	if code != http.StatusServiceUnavailable || rd.Ready {
		t.Fatalf("/readyz with an unwritable data directory: %d %+v", code, rd)
	}
	for _, c := range rd.Checks {
		if c.Name == "data directory" && (c.OK || !strings.Contains(c.Error, dir)) {
			t.Fatalf("data directory check %+v", c)
		}
		if c.Name != "data directory" && !c.OK {
			t.Fatalf("check %+v failed too", c)
		}
	}
	exec.Command("chattr", "-i", dir).Run()
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("/readyz after the data directory is writable again: %d", code)
	}
}

// Go's profiles are served on the admin listener only when configured:
// a goroutine dump shows the daemon's internals, which an operator asks
// for, never a default.
func TestAdminProfiling(t *testing.T) {
	for _, on := range []bool{false, true} {
		d, err := Start(t.Context(), Config{Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", DataDir: t.TempDir(), AdminProfiling: on})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get("http://" + d.AdminAddr() + "/debug/pprof/goroutine?debug=1")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		served := resp.StatusCode == 200 && strings.Contains(string(body), "goroutine profile:")
		if served != on {
			t.Errorf("profiling %v: /debug/pprof/goroutine answered %d (%.80q)", on, resp.StatusCode, body)
		}
		d.Close()
	}
}
