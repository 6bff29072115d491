// Command ferry operates a Ferry system from a terminal: it starts a
// development broker, lists services with their latencies, calls
// endpoints, publishes and follows events, replays dead letters, follows
// jobs and workflow runs, exports each service's documents and serves the
// dashboard. It uses wire protocols only — NATS discovery, the documents
// services serve over NATS, Ferry's subjects and JetStream's API — so it
// works against any Ferry system.
//
// Install it with
//
//	go install github.com/ferrygo/ferry/cmd/ferry@latest
//
// and run `ferry help` for its commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the command args name, writing to stdout and stderr, and
// returns the process's exit code: 0 on success, 1 when the command
// failed, 2 for a usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := &app{stdout: safeWriter{stdout}, stderr: stderr, rawStdout: stdout}
	root := app.command()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	app.close()
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		fmt.Fprintln(stderr, "run 'ferry help' or 'ferry COMMAND --help' for usage")
		return 2
	}
	if !errors.Is(err, errReported) {
		fmt.Fprintln(stderr, "ferry: "+sanitize(strings.TrimPrefix(oneLine(err), "ferry: ")))
	}
	return 1
}

// errReported is returned by a command that already printed why it failed.
var errReported = errors.New("reported")

// usageError is a command line that cannot be run.
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }
