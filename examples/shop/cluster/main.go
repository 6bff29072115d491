// Command cluster runs the shop scaled out on a real NATS cluster and
// breaks it while it works: it builds nats-server (at the version Ferry
// pins) and the shop, starts a 3-node JetStream cluster on loopback ports,
// runs two replicas of each service as separate processes against it
// (streams and buckets with 3 replicas), places orders through the
// gateways, and mid-run SIGKILLs one NATS node and one replica each of
// orders and worker, then restarts them. At the end it checks the
// invariants in the stores, prints orders/s before, during and after the
// kills and how long the disruption lasted, and stops every process it
// started.
//
//	go run ./examples/shop/cluster                     # 4,000 orders, kills 5s in
//	go run ./examples/shop/cluster -orders 1000 -kill-after 2s -down 3s
//	go run ./examples/shop/cluster -nodes 1 -kill=false   # separate processes on one server, no faults
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	s := settings{}
	fs.IntVar(&s.nodes, "nodes", 3, "NATS nodes")
	fs.IntVar(&s.replicas, "replicas", 2, "processes of each service")
	fs.IntVar(&s.orders, "orders", 4000, "orders to place")
	fs.IntVar(&s.concurrency, "concurrency", 16, "requests in flight at once")
	fs.BoolVar(&s.kill, "kill", true, "kill a NATS node and a replica of orders and of worker mid-run, then restart them")
	fs.DurationVar(&s.killAfter, "kill-after", 5e9, "when the kills come, from the first order")
	fs.DurationVar(&s.down, "down", 5e9, "how long the killed processes stay down")
	fs.StringVar(&s.dir, "dir", "", "directory for the stores and logs (default: a temporary one, removed at the end)")
	fs.Float64Var(&s.paymentFailure, "payment-failure", 0.05, "share of payments declined")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if s.nodes < 1 || s.replicas < 1 || s.orders < 1 {
		return errors.New("-nodes, -replicas and -orders must be at least 1")
	}
	if s.kill && (s.nodes < 3 || s.replicas < 2) {
		return errors.New("-kill needs at least 3 nodes and 2 replicas (what survives the kills)")
	}
	return scaleOut(ctx, s, out)
}
