package ferrytest

import (
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
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
