package ferry_test

// The review11 tests were written by an adversarial review to fail: each
// doc comment says what it proved. They pass since the fixes, which they
// guard.

// Review 11: tests of Part.Started and the host's run. Each says what it
// proves.

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
)

// TestReview11StartedPanicEndsProcess proves that a Started hook that
// panics ends the process at once: host.run calls the hooks in bare
// goroutines (host.go:313) with no recover, so the panic is not turned
// into RunSystem's error (as a hook's error is, and as a handler's panic
// is turned into a 500 by Recover), and the system gets no shutdown: no
// drain, no handing back of its in-flight work. The test runs RunSystem in
// a child process and expects it to return an error.
func TestReview11StartedPanicEndsProcess(t *testing.T) {
	if os.Getenv("REVIEW11_CHILD") == "panic" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := ferry.RunSystem(ctx, nil, []string{"-data-dir", os.Getenv("REVIEW11_DIR"), "-shutdown-grace", "1s", "-nats-embed"},
			ferry.Part{Name: "a", New: func() (*ferry.Service, error) { return ferry.New("a", "1.0.0", ferry.WithoutHTTP(), quiet) },
				Started: func(ctx context.Context, svc *ferry.Service) error { panic("seed: nil map") }})
		os.Stdout.WriteString("RUNSYSTEM RETURNED: " + errString(err) + "\n")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReview11StartedPanicEndsProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "REVIEW11_CHILD=panic", "REVIEW11_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if !strings.Contains(string(out), "RUNSYSTEM RETURNED") {
		t.Errorf("a Started hook's panic ended the process (%v) instead of stopping the system with an error:\n%s", err, firstLines(string(out), 6))
	}
}

// TestReview11StartedOutlivesRunSystem proves that RunSystem returns
// while a Started hook still runs: the hooks' context ends when the
// shutdown begins, but run (host.go:334) never waits for them, so a hook
// that finishes its work after ctx ends — or ignores ctx — goes on using
// a service whose host has shut down, after RunSystem has returned (and
// main.go's -load hook writes loadErr, which run's caller reads, with
// nothing ordering the two).
func TestReview11StartedOutlivesRunSystem(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var done atomic.Bool
	err := ferry.RunSystem(ctx, nil, []string{"-data-dir", t.TempDir(), "-shutdown-grace", "1s", "-nats-embed"},
		ferry.Part{Name: "a", New: func() (*ferry.Service, error) { return ferry.New("a", "1.0.0", ferry.WithoutHTTP(), quiet) },
			Started: func(ctx context.Context, svc *ferry.Service) error {
				<-ctx.Done()
				time.Sleep(300 * time.Millisecond) // finishing what it was doing
				done.Store(true)
				return nil
			}})
	if !done.Load() {
		t.Errorf("RunSystem returned (%v) with its Started hook still running", err)
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
