package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/shop/load"
	"github.com/ferrygo/ferry/internal/natscluster"
)

// settings are the run's flags.
type settings struct {
	nodes, replicas, orders, concurrency int
	kill                                 bool
	killAfter, down                      time.Duration
	dir                                  string
	paymentFailure                       float64
}

// apiKey is the key the run's gateways accept.
const apiKey = "shop_cluster_run"

// services are the shop's services, in the order they start.
var services = []string{"catalog", "orders", "worker", "gateway"}

// scaleOut does the run; see the package comment.
func scaleOut(ctx context.Context, s settings, out io.Writer) (err error) {
	dir := s.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "shop-cluster-"); err != nil {
			return err
		}
		defer func() {
			if err == nil { // kept for a look at the logs otherwise
				os.RemoveAll(dir)
			}
		}()
	}
	fmt.Fprintf(out, "building nats-server and the shop (stores and logs in %s)\n", dir)
	natsBin, err := natscluster.Binary(ctx)
	if err != nil {
		return err
	}
	shopBin := filepath.Join(dir, "shop")
	if b, err := exec.CommandContext(ctx, "go", "build", "-o", shopBin, "github.com/ferrygo/ferry/examples/shop").CombinedOutput(); err != nil {
		return fmt.Errorf("build the shop: %w\n%s", err, b)
	}
	logs, err := os.Create(filepath.Join(dir, "nats.log"))
	if err != nil {
		return err
	}
	defer logs.Close()
	cluster, err := natscluster.Start(ctx, natscluster.Options{Nodes: s.nodes, Dir: filepath.Join(dir, "nats"), Bin: natsBin, Name: "shop", Logs: logs})
	if err != nil {
		return err
	}
	defer cluster.Close()
	fmt.Fprintf(out, "NATS: %d nodes at %s\n", s.nodes, cluster.URL())

	sys := &system{bin: shopBin, dir: dir, env: []string{
		"FERRY_NATS_URL=" + cluster.URL(),
		"FERRY_STREAM_REPLICAS=" + fmt.Sprint(min(3, s.nodes)),
		"SHOP_API_KEY=" + apiKey,
	}, args: []string{"-payment-failure", fmt.Sprint(s.paymentFailure), "-invoice-delay", "20ms", "-shutdown-grace", "5s"}}
	defer sys.stopAll()
	for _, name := range services {
		for range s.replicas {
			p, err := sys.start(ctx, name)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "%-8s replica %d at http://%s, ready in %s\n", name, p.replica, p.addr, p.ready.Round(time.Millisecond))
		}
	}
	nc, err := nats.Connect(cluster.URL(), nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	client := ferry.NewClient(nc)

	var gateways []string
	for _, p := range sys.procs["gateway"] {
		gateways = append(gateways, "http://"+p.addr)
	}
	fmt.Fprintf(out, "placing %d orders through %d gateways, %d at a time\n", s.orders, len(gateways), s.concurrency)
	f := &faults{finished: make(chan struct{})}
	done := make(chan struct{})
	if s.kill {
		go inject(ctx, f, cluster, sys, s, out, done)
	} else {
		close(f.finished)
	}
	report, err := load.Run(ctx, load.Options{URLs: gateways, APIKey: apiKey, Orders: s.orders, Concurrency: s.concurrency,
		Client: client, Seed: uint64(time.Now().UnixNano()), Wait: 3 * time.Minute})
	close(done)
	if err != nil {
		return err
	}
	<-f.finished
	fmt.Fprint(out, report)
	if s.kill {
		f.report(out, report)
	}
	bad, err := checkStores(ctx, client, report.Orders, out)
	if err != nil {
		return fmt.Errorf("check the stores: %w", err)
	}
	for _, b := range bad {
		fmt.Fprintln(out, "VIOLATION:", b)
	}
	if len(bad) > 0 || report.Unfinished > 0 || report.Errors > 0 {
		if report.Unfinished > 0 {
			diagnose(ctx, out, client, report.Pending)
			sys.dump() // what the unfinished orders wait for: each process's goroutines, in its log
		}
		return fmt.Errorf("%d invariant violations, %d unfinished orders, %d failed requests (logs in %s)", len(bad), report.Unfinished, report.Errors, dir)
	}
	fmt.Fprintf(out, "invariants: hold — %d accepted orders all ended (none lost), none invoiced twice, stock + reserved + sold = received\n", report.Accepted)
	return nil
}

// faults is what inject did, and when; read it once finished is closed.
type faults struct {
	finished          chan struct{}
	killed, restarted time.Time
	recovered         time.Duration // node restart to a ready cluster
}

// inject kills NATS node 1 and the first replica of orders and of worker
// killAfter into the run, and restarts them down later.
func inject(ctx context.Context, f *faults, cluster *natscluster.Cluster, sys *system, s settings, out io.Writer, done <-chan struct{}) {
	defer close(f.finished)
	select {
	case <-time.After(s.killAfter):
	case <-done:
		fmt.Fprintln(out, "the orders were all placed before the kills: raise -orders or lower -kill-after")
		return
	case <-ctx.Done():
		return
	}
	f.killed = time.Now()
	cluster.Kill(0)
	sys.kill("orders", 0)
	sys.kill("worker", 0)
	fmt.Fprintf(out, "%s  SIGKILL: NATS node %s, orders replica 1, worker replica 1\n", f.killed.Format("15:04:05.000"), cluster.Nodes()[0].Name)
	select {
	case <-time.After(s.down):
	case <-ctx.Done():
		return
	}
	f.restarted = time.Now()
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := cluster.Restart(rctx, 0); err != nil {
		fmt.Fprintln(out, "restart NATS node:", err)
	}
	f.recovered = time.Since(f.restarted)
	for _, name := range []string{"orders", "worker"} {
		if err := sys.restart(rctx, name, 0); err != nil {
			fmt.Fprintf(out, "restart %s: %v\n", name, err)
		}
	}
	fmt.Fprintf(out, "%s  restarted them (the node was ready again in %s)\n", time.Now().Format("15:04:05.000"), f.recovered.Round(time.Millisecond))
}

// report prints orders/s before, during and after the kills, and how long
// the disruption lasted: from the kill until invoicing ran again at half
// its earlier rate over a second.
func (f *faults) report(out io.Writer, r *load.Report) {
	if f.killed.IsZero() || len(r.Done) == 0 {
		return
	}
	end := r.Done[len(r.Done)-1]
	before := r.Rate(r.Start, f.killed)
	during := r.Rate(f.killed, f.restarted)
	after := r.Rate(f.restarted, end)
	fmt.Fprintf(out, "orders/s invoiced: %.0f before the kills, %.0f while the node and replicas were down, %.0f after the restart\n", before, during, after)
	disrupted := time.Duration(-1)
	for t := f.killed; t.Before(end); t = t.Add(100 * time.Millisecond) {
		if r.Rate(t, t.Add(time.Second)) >= before/2 {
			disrupted = t.Sub(f.killed)
			break
		}
	}
	gap := time.Duration(0)
	i := slices.IndexFunc(r.Done, func(t time.Time) bool { return !t.Before(f.killed) })
	for ; i > 0 && i < len(r.Done); i++ {
		gap = max(gap, r.Done[i].Sub(r.Done[i-1]))
	}
	switch {
	case disrupted < 0:
		fmt.Fprintf(out, "disruption: invoicing did not return to half its earlier rate; longest pause between two invoices %s\n", gap.Round(time.Millisecond))
	default:
		fmt.Fprintf(out, "disruption: %s from the kills until invoicing ran at half its earlier rate again; longest pause between two invoices %s\n",
			disrupted.Round(100*time.Millisecond), gap.Round(time.Millisecond))
	}
}

// checkPatience is how long the check of the stores is tried again while
// the cluster refuses a read (a stream or bucket whose leader the restarted
// node was, still being elected, answers no responders or times out).
const checkPatience = 30 * time.Second

// checkStores runs load.Check, again while it fails to read (it only
// reads, so running it again is safe) for up to checkPatience.
func checkStores(ctx context.Context, client *ferry.Client, orders []string, out io.Writer) ([]string, error) {
	deadline := time.Now().Add(checkPatience)
	for {
		bad, err := load.Check(ctx, client, orders)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return bad, err
		}
		fmt.Fprintf(out, "check the stores: %v; again in 1s\n", err)
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
		}
	}
}
