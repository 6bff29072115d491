package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"testing"

	"github.com/ferrygo/ferry/ferrytest"
)

func newTestServer(h http.Handler) *httptest.Server { return httptest.NewServer(h) }

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startProcess(t *testing.T, bin string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = t.Output(), t.Output()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

func waitHTTP(t *testing.T, addr string) {
	t.Helper()
	ferrytest.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/openapi.json")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, "%s serves HTTP", addr)
}
