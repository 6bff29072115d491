// Command soak runs the example shop (examples/shop: gateway, catalog,
// orders, worker) in one process on the embedded broker under a steady
// mixed load for a long time, and checks that it does not drift: orders
// placed over HTTP (each one a NATS call to orders, a workflow with NATS
// calls to the catalog, an order-placed event, an invoice job and an
// order-invoiced event), plain HTTP reads through the gateway and NATS
// calls straight to the services, each at a fixed rate (open loop).
//
// Every -every it samples the throughput and p99 latency of each kind of
// work, the goroutines, the Go heap and the process's RSS (VmRSS from
// /proc/self/status). At the end it waits for the last orders to end,
// checks the shop's stores (every accepted order ended, none invoiced
// twice, stock balanced), prints a summary table and a verdict — the
// goroutines and the RSS at the end against those just after the
// warm-up, within a generous ratio — and writes the samples as an SVG
// plot.
//
//	go run ./bench/soak                                 # 10 minutes
//	go run ./bench/soak -duration 1m -svg /tmp/soak.svg
//	go run ./bench/soak -svg docs/soak.svg -records docs/reliability/records -json /tmp/soak.json
//	go run ./bench/soak -plot /tmp/soak.json -svg docs/soak.svg   # plot a saved run again
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/ferrygo/ferry/internal/reliability"
)

func main() {
	o := DefaultOptions()
	flag.DurationVar(&o.Duration, "duration", o.Duration, "how long to run the load")
	flag.DurationVar(&o.Every, "every", 0, "sampling interval (0: duration/120, between 1s and 5s)")
	flag.Float64Var(&o.OrderRate, "orders", o.OrderRate, "orders placed per second (HTTP POST through the gateway)")
	flag.Float64Var(&o.HTTPRate, "http", o.HTTPRate, "HTTP reads per second through the gateway")
	flag.Float64Var(&o.NATSRate, "nats", o.NATSRate, "NATS calls per second straight to catalog and orders")
	svg := flag.String("svg", "", "write the plot here (e.g. docs/soak.svg)")
	save := flag.String("json", "", "write the run (settings, samples, totals, verdict) here as JSON")
	replot := flag.String("plot", "", "read a run written with -json and only write its plot to -svg")
	records := flag.String("records", os.Getenv("FERRY_RELIABILITY_RECORDS"), "write the soak record into this directory (env FERRY_RELIABILITY_RECORDS)")
	flag.Parse()
	o.Log = os.Stdout
	if *replot != "" {
		if err := plot(*replot, *svg); err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := Run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	fmt.Println()
	fmt.Print(res.Table())
	fmt.Println()
	fmt.Println(res.Verdict)
	if *svg != "" {
		if err := os.WriteFile(*svg, []byte(res.SVG()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
			os.Exit(1)
		}
		fmt.Println("plot:", *svg)
	}
	if *save != "" {
		raw, _ := json.MarshalIndent(res, "", " ")
		if err := os.WriteFile(*save, raw, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
			os.Exit(1)
		}
	}
	if *records != "" {
		cmd := "go run ./bench/soak"
		if len(os.Args) > 1 {
			cmd += " " + strings.Join(os.Args[1:], " ")
		}
		if err := reliability.Write(*records, res.Record(cmd)); err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
			os.Exit(1)
		}
	}
	if !res.Flat || len(res.Violations) > 0 || res.Errors() > 0 {
		os.Exit(1)
	}
}

// plot writes the plot of the run saved in from (-json) to svg.
func plot(from, svg string) error {
	raw, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	var res Result
	if err := json.Unmarshal(raw, &res); err != nil {
		return err
	}
	return os.WriteFile(svg, []byte(res.SVG()), 0o644)
}
