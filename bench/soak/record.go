package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/ferrygo/ferry/internal/reliability"
)

// Record is the run as the "soak" record: the orders acknowledged (202)
// and found ended in the stores afterwards; lost and duplicated orders
// come from the store check.
func (r *Result) Record(command string) reliability.Record {
	lost, dup := 0, 0
	for _, v := range r.Violations {
		switch {
		case strings.Contains(v, "(lost)") || strings.Contains(v, "(not ended)"):
			lost++
		case strings.Contains(v, " times (order-invoiced events)"):
			dup++
		}
	}
	secs := r.Options.Duration.Seconds()
	return reliability.Record{
		Scenario:     "soak",
		Fault:        fmt.Sprintf("%s of steady mixed load on the shop in one process (orders over HTTP with their workflows, events and jobs; HTTP reads; NATS calls)", r.Options.Duration),
		Runs:         1,
		Acknowledged: r.Accepted,
		Found:        r.Accepted - lost,
		Lost:         lost,
		Duplicates:   dup,
		Command:      command,
		Figures: map[string]string{
			"orders/s":         fmt.Sprintf("%.1f", float64(r.Total[kindOrder])/secs),
			"http/s":           fmt.Sprintf("%.1f", float64(r.Total[kindHTTP])/secs),
			"nats/s":           fmt.Sprintf("%.1f", float64(r.Total[kindNATS])/secs),
			"order p99":        fmtDur(r.P99[kindOrder]),
			"goroutines":       fmt.Sprintf("%.0f → %.0f", r.GoroutinesStart, r.GoroutinesEnd),
			"rss":              fmt.Sprintf("%.0f → %.0f MiB", r.RSSStart, r.RSSEnd),
			"heap":             fmt.Sprintf("%.0f → %.0f MiB", r.HeapStart, r.HeapEnd),
			"failed requests":  fmt.Sprint(r.Errors()),
			"store violations": fmt.Sprint(len(r.Violations)),
		},
		Notes: r.Verdict,
		When:  r.Started.UTC().Truncate(time.Second),
	}
}
