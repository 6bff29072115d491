package ferrytest

import (
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Build compiles the main package in dir (a path the go command accepts,
// such as "." or "./cmd/server") into a temporary binary and returns its
// path, for tests that run a service as a real process.
func Build(t testing.TB, dir string) string {
	t.Helper()
	name := filepath.Base(filepath.Clean(dir))
	if name == "." || name == ".." || name == string(filepath.Separator) {
		name = "service"
	}
	bin := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("go", "build", "-o", bin, dir).CombinedOutput(); err != nil {
		t.Fatalf("ferrytest: go build %s: %v\n%s", dir, err, out)
	}
	return bin
}

// StartProcess starts bin with args, its output going to the test's; the
// process is killed at the end of the test if it is still running. Stop it
// yourself (a signal, then Wait) to check how it ends.
func StartProcess(t testing.TB, bin string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = t.Output(), t.Output()
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("ferrytest: start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

// FreeAddr returns a loopback address with a port that was free a moment
// ago, for a process under test to listen on.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("ferrytest: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// WaitHTTP waits until a Ferry service serves HTTP at addr (its OpenAPI
// document answers 200).
func WaitHTTP(t testing.TB, addr string) {
	t.Helper()
	Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/openapi.json")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "%s serves HTTP", addr)
}

// SystemProcess is one service of a system program run as its own process
// by [StartSystem].
type SystemProcess struct {
	// Service is the service's name; Addr its HTTP address.
	Service, Addr string
	// DataDir is the data directory the system's processes share.
	DataDir string
	// Cmd is the process.
	Cmd *exec.Cmd
}

// StartSystem runs each named service of the system program bin (built
// with [Build]; it selects services with -service, as [ferry.RunSystem]
// does) as a process of its own: the first starts the broker, listening on
// a free loopback port, and the others join it through the data directory
// they share. Each listens on a free address and is waited for until it
// serves HTTP. args are given to every process. The processes are killed
// when the test ends, unless [StopSystem] stopped them.
func StartSystem(t testing.TB, bin string, services []string, args ...string) []*SystemProcess {
	t.Helper()
	if len(services) == 0 {
		t.Fatal("ferrytest: StartSystem: no services")
	}
	first := startSystemProcess(t, bin, services[0], t.TempDir(), append([]string{"-nats-listen", "127.0.0.1:0"}, args...))
	procs := []*SystemProcess{first}
	for _, name := range services[1:] {
		procs = append(procs, JoinSystem(t, bin, first, name, args...))
	}
	return procs
}

// JoinSystem runs another service of the system program bin as a process
// of its own that joins the broker of first (a process [StartSystem]
// started), and waits until it serves HTTP.
func JoinSystem(t testing.TB, bin string, first *SystemProcess, service string, args ...string) *SystemProcess {
	t.Helper()
	return startSystemProcess(t, bin, service, first.DataDir, args)
}

func startSystemProcess(t testing.TB, bin, service, dataDir string, args []string) *SystemProcess {
	t.Helper()
	p := &SystemProcess{Service: service, Addr: FreeAddr(t), DataDir: dataDir}
	p.Cmd = StartProcess(t, bin, append([]string{"-service", service, "-addr", p.Addr, "-data-dir", dataDir}, args...)...)
	WaitHTTP(t, p.Addr)
	return p
}

// StopSystem sends SIGTERM to each process, the last started first, and
// fails the test unless each drains and exits 0 within DefaultWait.
func StopSystem(t testing.TB, procs ...*SystemProcess) {
	t.Helper()
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		_ = p.Cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- p.Cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("ferrytest: service %s exited with %v after SIGTERM", p.Service, err)
			}
		case <-time.After(DefaultWait):
			_ = p.Cmd.Process.Kill()
			<-done
			t.Errorf("ferrytest: service %s did not exit within %v of SIGTERM", p.Service, DefaultWait)
		}
	}
}
