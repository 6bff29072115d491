package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferrygo/ferry/examples/shop/load"
)

// Options are a soak run's settings; DefaultOptions gives the full run.
type Options struct {
	Duration  time.Duration // how long the load runs
	Every     time.Duration // sampling interval; 0: Duration/120 within [1s, 5s]
	OrderRate float64       // orders per second
	HTTPRate  float64       // HTTP reads per second
	NATSRate  float64       // NATS calls per second
	// PaymentFailure is the share of orders whose payment is declined (their
	// workflows fail and compensate).
	PaymentFailure float64
	// MaxGrowth is the largest end ÷ start ratio of the goroutines and of
	// the RSS that still counts as flat.
	MaxGrowth float64
	Log       io.Writer `json:"-"` // progress lines; nil: none
}

// DefaultOptions is the full soak: 10 minutes at 10 orders, 40 HTTP reads
// and 40 NATS calls a second.
func DefaultOptions() Options {
	return Options{Duration: 10 * time.Minute, OrderRate: 10, HTTPRate: 40, NATSRate: 40, PaymentFailure: 0.05, MaxGrowth: 1.5}
}

// Sample is the state of the process at one moment of the run.
type Sample struct {
	At         time.Duration        // since the load began
	Rate       [kinds]float64       // per second over the last interval
	P99        [kinds]time.Duration // over the last interval (0: none)
	Goroutines int
	HeapMiB    float64 // runtime.MemStats.HeapAlloc
	RSSMiB     float64 // VmRSS
}

// Result is a finished soak run.
type Result struct {
	Options    Options
	Started    time.Time
	Samples    []Sample
	Total      [kinds]int
	Failed     [kinds]int
	P50, P99   [kinds]time.Duration
	Skipped    int64 // driver ticks skipped: every slot of a driver busy
	Failures   []string
	Accepted   int      // orders answered 202
	Violations []string // from the shop's store check
	Drained    time.Duration

	// The verdict: start is the median over the window after the warm-up,
	// end the median over the last window.
	Warmup                         time.Duration
	GoroutinesStart, GoroutinesEnd float64
	RSSStart, RSSEnd               float64
	HeapStart, HeapEnd             float64
	Flat                           bool
	Verdict                        string
}

// Errors is the number of the soak's own requests that failed.
func (r *Result) Errors() int {
	n := 0
	for k := range kinds {
		if k.driven() {
			n += r.Failed[k]
		}
	}
	return n
}

// Run starts the shop, loads it for o.Duration while sampling, drains it,
// checks its stores and returns what it measured.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Every <= 0 {
		o.Every = min(max(o.Duration/120, time.Second), 5*time.Second)
	}
	if o.MaxGrowth <= 0 {
		o.MaxGrowth = DefaultOptions().MaxGrowth
	}
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", args...)
		}
	}
	st := &stats{}
	s, err := startShop(ctx, counting(st), o.PaymentFailure)
	if err != nil {
		return nil, err
	}
	defer func() { _ = s.stop() }()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = maxInFlight
	d := &driver{shop: s, st: st, http: &http.Client{Transport: tr, Timeout: 15 * time.Second}}
	defer tr.CloseIdleConnections()

	res := &Result{Options: o, Started: time.Now()}
	logf("soak: %s at %.0f orders/s, %.0f HTTP reads/s, %.0f NATS calls/s; a sample every %s", o.Duration, o.OrderRate, o.HTTPRate, o.NATSRate, o.Every)
	lctx, stopLoad := context.WithTimeout(ctx, o.Duration)
	defer stopLoad()
	var wg sync.WaitGroup
	wg.Go(func() { d.run(lctx, kindOrder, o.OrderRate, d.placeOrder) })
	wg.Go(func() { d.run(lctx, kindHTTP, o.HTTPRate, d.httpRead) })
	wg.Go(func() { d.run(lctx, kindNATS, o.NATSRate, d.natsCall) })

	begin := time.Now()
	last := begin
	st.take()
	tick := time.NewTicker(o.Every)
	for done := false; !done; {
		select {
		case <-lctx.Done():
			done = true
		case <-tick.C:
		}
		now := time.Now()
		if done && now.Sub(last) < o.Every/2 {
			break // the load ended just after a sample: too short an interval to rate
		}
		smp := sample(st.take(), now.Sub(last))
		smp.At = now.Sub(begin)
		last = now
		res.Samples = append(res.Samples, smp)
		logf("%6s  orders %5.1f/s  http %5.1f/s  nats %5.1f/s  wf %5.1f/s  events %5.1f/s  jobs %5.1f/s  p99 order %s  goroutines %d  heap %.1f MiB  rss %.1f MiB",
			smp.At.Round(time.Second), smp.Rate[kindOrder], smp.Rate[kindHTTP], smp.Rate[kindNATS], smp.Rate[kindWorkflow], smp.Rate[kindEvent], smp.Rate[kindJob],
			smp.P99[kindOrder].Round(time.Millisecond), smp.Goroutines, smp.HeapMiB, smp.RSSMiB)
	}
	tick.Stop()
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// Drain: wait until every accepted order has ended, then check the stores.
	d.mu.Lock()
	accepted := slices.Clone(d.accepted)
	d.mu.Unlock()
	res.Accepted = len(accepted)
	drainStart := time.Now()
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		bad, err := load.Check(cctx, s.client, accepted)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("check the stores: %w", err)
		}
		res.Violations = bad
		if !slices.ContainsFunc(bad, func(v string) bool { return strings.Contains(v, "not ended") }) || time.Since(drainStart) > time.Minute {
			break
		}
		time.Sleep(time.Second)
	}
	res.Drained = time.Since(drainStart)

	st.mu.Lock()
	for k := range kinds {
		res.Total[k], res.Failed[k] = st.total[k], st.failed[k]
		res.P50[k], res.P99[k] = st.all[k].percentile(50), st.all[k].percentile(99)
	}
	st.mu.Unlock()
	res.Skipped = d.skipped.Load()
	d.failures.Range(func(k, v any) bool {
		if len(res.Failures) < 20 {
			res.Failures = append(res.Failures, fmt.Sprintf("%s ×%d", k, v.(interface{ Load() int64 }).Load()))
		}
		return true
	})
	slices.Sort(res.Failures)
	res.judge()
	return res, nil
}

// sample reads the process's state and turns one interval's windows into
// rates and p99s.
func sample(w [kinds]window, over time.Duration) Sample {
	var smp Sample
	for k := range kinds {
		smp.Rate[k] = float64(w[k].n) / over.Seconds()
		smp.P99[k] = percentile(w[k].lat, 99)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	smp.Goroutines = runtime.NumGoroutine()
	smp.HeapMiB = float64(ms.HeapAlloc) / (1 << 20)
	smp.RSSMiB = rssMiB()
	return smp
}

// rssMiB is the process's resident set (VmRSS in /proc/self/status), in
// MiB; 0 where there is no /proc.
func rssMiB() float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(raw)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0
			}
			return kb / 1024
		}
	}
	return 0
}

// judge compares the goroutines, the RSS and the heap at the end with
// those just after the warm-up (a fifth of the run, at most two minutes):
// each is the median over a window of a tenth of the run (at least three
// samples), so one sample taken amid a burst or a collection does not
// decide.
func (r *Result) judge() {
	n := len(r.Samples)
	r.Warmup = min(r.Options.Duration/5, 2*time.Minute)
	win := max(n/10, 3)
	first := slices.IndexFunc(r.Samples, func(s Sample) bool { return s.At >= r.Warmup })
	if first < 0 || first+win > n-win {
		r.Verdict = "verdict: too few samples after the warm-up to judge (run longer)"
		return
	}
	med := func(from int, f func(Sample) float64) float64 {
		vs := make([]float64, 0, win)
		for _, s := range r.Samples[from : from+win] {
			vs = append(vs, f(s))
		}
		slices.Sort(vs)
		return vs[len(vs)/2]
	}
	gor := func(s Sample) float64 { return float64(s.Goroutines) }
	rss := func(s Sample) float64 { return s.RSSMiB }
	heap := func(s Sample) float64 { return s.HeapMiB }
	r.GoroutinesStart, r.GoroutinesEnd = med(first, gor), med(n-win, gor)
	r.RSSStart, r.RSSEnd = med(first, rss), med(n-win, rss)
	r.HeapStart, r.HeapEnd = med(first, heap), med(n-win, heap)
	// A few goroutines more or less (a connection, a timer) are not
	// growth; more are, whatever the count they started from: a steady
	// load needs a steady number of goroutines.
	flatG := r.GoroutinesEnd <= r.GoroutinesStart+maxGoroutineGrowth
	flatR := r.RSSStart == 0 || r.RSSEnd <= r.RSSStart*r.Options.MaxGrowth
	r.Flat = flatG && flatR
	var problems []string
	if !flatG {
		problems = append(problems, "goroutines grew")
	}
	if !flatR {
		problems = append(problems, "RSS grew")
	}
	if e := r.Errors(); e > 0 {
		problems = append(problems, fmt.Sprintf("%d requests failed", e))
	}
	if len(r.Violations) > 0 {
		problems = append(problems, fmt.Sprintf("%d store violations", len(r.Violations)))
	}
	word := "PASS"
	if len(problems) > 0 {
		word = "FAIL (" + strings.Join(problems, ", ") + ")"
	}
	r.Verdict = fmt.Sprintf("verdict: %s — goroutines %.0f → %.0f (×%.2f), RSS %.1f → %.1f MiB (×%.2f), heap %.1f → %.1f MiB (×%.2f); "+
		"start = median after the %s warm-up, end = median of the last %d samples; flat = goroutines at most +20, RSS at most ×%.2f",
		word, r.GoroutinesStart, r.GoroutinesEnd, ratio(r.GoroutinesEnd, r.GoroutinesStart), r.RSSStart, r.RSSEnd, ratio(r.RSSEnd, r.RSSStart),
		r.HeapStart, r.HeapEnd, ratio(r.HeapEnd, r.HeapStart), r.Warmup, win, r.Options.MaxGrowth)
}

// maxGoroutineGrowth is how many goroutines more than after the warm-up
// still count as flat.
const maxGoroutineGrowth = 20

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// Table is the run's summary as a markdown table, with its failures and
// violations after it.
func (r *Result) Table() string {
	var b strings.Builder
	secs := r.Options.Duration.Seconds()
	fmt.Fprintf(&b, "| kind | total | per second | failed | p50 | p99 |\n|---|--:|--:|--:|--:|--:|\n")
	for k := range kinds {
		fmt.Fprintf(&b, "| %s | %d | %.1f | %d | %s | %s |\n", kindNames[k], r.Total[k], float64(r.Total[k])/secs, r.Failed[k],
			fmtDur(r.P50[k]), fmtDur(r.P99[k]))
	}
	fmt.Fprintf(&b, "\norders accepted %d; drained and checked in %s; driver ticks skipped (every slot busy) %d\n", r.Accepted, r.Drained.Round(100*time.Millisecond), r.Skipped)
	if r.Failed[kindWorkflow] > 0 {
		fmt.Fprintf(&b, "failed workflow executions are declined payments (%.0f%% of orders), compensated\n", r.Options.PaymentFailure*100)
	}
	for _, f := range r.Failures {
		fmt.Fprintf(&b, "failure: %s\n", f)
	}
	for _, v := range r.Violations {
		fmt.Fprintf(&b, "VIOLATION: %s\n", v)
	}
	return b.String()
}

// fmtDur prints d in milliseconds, to two significant places below 10.
func fmtDur(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	if ms < 10 {
		return fmt.Sprintf("%.2f ms", ms)
	}
	return fmt.Sprintf("%.0f ms", ms)
}
