package nfs4client

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/efsd/efsd/internal/efstest/ports"
)

// The lease and grace period of the ganesha these tests start: short, so
// that lease expiry and a restart's grace period take seconds.
const (
	ganeshaLease = 5 * time.Second
	ganeshaGrace = 10 * time.Second
)

// ganesha is an nfs-ganesha serving NFSv4.0 and 4.1 only (no portmapper
// registration needed) from a temporary FSAL_VFS export at pseudo path
// /export, with its recovery records in a temporary directory so that
// a restart has clients to wait for.
type ganesha struct {
	t    *testing.T
	bin  string
	dir  string
	addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// startGanesha starts nfs-ganesha, or skips the test when it cannot:
// it is installed on developers' machines, not in CI, and runs as root.
func startGanesha(t *testing.T) *ganesha {
	t.Helper()
	bin, err := exec.LookPath("ganesha.nfsd")
	if err != nil {
		t.Skip("nfs-ganesha is not installed (apt-get install nfs-ganesha nfs-ganesha-vfs), and EFSD_NFS4_ADDR names no server: skipping the end-to-end test")
	}
	if os.Geteuid() != 0 {
		t.Skip("nfs-ganesha's VFS FSAL needs root, and EFSD_NFS4_ADDR names no server: skipping the end-to-end test")
	}
	dir := t.TempDir()
	for _, d := range []string{"export", "recovery"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	port := ports.Free(t)
	conf := fmt.Sprintf(`# written by nfs4client's tests
NFS_CORE_PARAM {
	Protocols = 4;
	NFS_Port = %d;
	Bind_addr = 127.0.0.1;
	Enable_NLM = false;
	Enable_RQUOTA = false;
}
NFSV4 {
	Minor_Versions = 0, 1;
	Lease_Lifetime = %d;
	Grace_Period = %d;
	RecoveryBackend = fs;
	RecoveryRoot = %s;
	Only_Numeric_Owners = true;
}
NFS_KRB5 { Active_krb5 = false; }
EXPORT {
	Export_Id = 1;
	Path = %s;
	Pseudo = /export;
	Access_Type = RW;
	Squash = No_Root_Squash;
	Protocols = 4;
	Transports = TCP;
	SecType = sys;
	FSAL { Name = VFS; }
}
LOG { Default_Log_Level = EVENT; }
`, port, int(ganeshaLease.Seconds()), int(ganeshaGrace.Seconds()), filepath.Join(dir, "recovery"), filepath.Join(dir, "export"))
	if err := os.WriteFile(filepath.Join(dir, "ganesha.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	g := &ganesha{t: t, bin: bin, dir: dir, addr: "127.0.0.1:" + strconv.Itoa(port)}
	g.start()
	t.Cleanup(g.stop)
	return g
}

// start runs ganesha and waits until it answers NULL.
func (g *ganesha) start() {
	t := g.t
	t.Helper()
	g.cmd = exec.Command(g.bin, "-F", "-f", filepath.Join(g.dir, "ganesha.conf"),
		"-L", filepath.Join(g.dir, "ganesha.log"), "-p", filepath.Join(g.dir, "ganesha.pid"))
	out, err := os.OpenFile(filepath.Join(g.dir, "ganesha.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	g.cmd.Stdout, g.cmd.Stderr = out, out
	// Its own process group, so a signal for it reaches nothing else;
	// killed if the test binary dies.
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("start ganesha: %v", err)
	}
	g.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		cmd.Wait()
		close(done)
	}(g.cmd, g.done)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		select {
		case <-g.done:
			t.Fatalf("ganesha exited during start-up:\n%s", g.logTail())
		case <-ctx.Done():
			t.Fatalf("ganesha did not answer NULL at %s within 60s:\n%s", g.addr, g.logTail())
		case <-time.After(50 * time.Millisecond):
		}
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := Dial(cctx, g.addr, Cred{})
		if err == nil {
			err = c.Null(cctx)
			c.Close()
		}
		ccancel()
		if err == nil {
			return
		}
	}
}

// stop sends SIGTERM to ganesha (by PID), and SIGKILL if it is still
// there 15 s later.
func (g *ganesha) stop() {
	if g.cmd == nil || g.cmd.Process == nil {
		return
	}
	select {
	case <-g.done:
		return
	default:
	}
	g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(15 * time.Second):
		g.t.Logf("ganesha ignored SIGTERM for 15s; killing it")
		g.cmd.Process.Kill()
		<-g.done
	}
}

// logTail is the end of ganesha's log and output, for failures.
func (g *ganesha) logTail() string {
	var b strings.Builder
	for _, f := range []string{"ganesha.log", "ganesha.out"} {
		data, _ := os.ReadFile(filepath.Join(g.dir, f))
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) > 30 {
			lines = lines[len(lines)-30:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", f, strings.Join(lines, "\n"))
	}
	return b.String()
}

// errorsAs is errors.As for a target type, for brevity in tests.
func errorsAs[T error](err error) (T, bool) {
	var t T
	ok := errors.As(err, &t)
	return t, ok
}
