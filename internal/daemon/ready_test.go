package daemon

import (
	"encoding/json"
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
