// Command faults runs Ferry's randomised fault run: a small system of its
// own — an endpoint, a subscription, a job kind and a three-step workflow,
// each service its own process on one embedded broker held by a process
// of its own — under a driver that issues operations and persists each
// acknowledgement, while a controller SIGKILLs and restarts the service
// processes and the broker's at moments a seed decides. A checker then
// compares the persisted acknowledgements with what the handlers recorded
// in a JetStream bucket: nothing acknowledged may be lost, and every retry
// must be absorbed by its message ID or idempotency key.
//
//	go run ./bench/faults                                  # a time-based seed, printed
//	go run ./bench/faults -seed 42 -ops 2000 -kills 12     # replays seed 42's plan
//	go run ./bench/faults -scenario broker-restart         # the broker's process only
//	go run ./bench/faults -records docs/reliability/records
//
// The same seed replays the same operations and the same faults (which
// process, after how many acknowledgements, down for how long); the timing
// of real processes differs from run to run. See docs/reliability.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		// A process of the system under fault, started by the controller.
		if err := serve(context.Background(), os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	o := defaultOptions()
	fs := flag.NewFlagSet("faults", flag.ContinueOnError)
	o.flags(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		os.Exit(2)
	}
	if o.Seed == 0 {
		o.Seed = time.Now().UnixNano()
	}
	bin, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		os.Exit(1)
	}
	o.Bin = bin
	o.Command = o.command("go run ./bench/faults")
	o.Logf = func(format string, args ...any) {
		fmt.Printf("%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out, err := Run(ctx, o)
	if out != nil {
		fmt.Print(summary(out))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		os.Exit(1)
	}
}
