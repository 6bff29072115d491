package main

import (
	"math"
	"slices"
	"sync"
	"time"
)

// kind is a sort of work the soak counts.
type kind int

const (
	kindOrder    kind = iota // POST /orders through the gateway (HTTP), driven
	kindHTTP                 // GET of a product or an order through the gateway, driven
	kindNATS                 // a NATS call straight to catalog or orders, driven
	kindWorkflow             // a workflow execution (place-order), handled by orders
	kindEvent                // an event delivery, handled by worker and orders
	kindJob                  // a job run (invoice-order), handled by worker
	kinds
)

// kindNames name the kinds in the table, the plot and the record.
var kindNames = [kinds]string{"order (HTTP POST)", "HTTP GET", "NATS call", "workflow", "event", "job"}

// driven reports whether the soak issues this kind itself (its failures
// are errors) rather than observing the services handle it.
func (k kind) driven() bool { return k <= kindNATS }

// window is what one kind did since the last sample.
type window struct {
	n, failed int
	lat       []time.Duration
}

// stats collects each kind's work between samples and in total.
type stats struct {
	mu     sync.Mutex
	win    [kinds]window
	total  [kinds]int
	failed [kinds]int
	all    [kinds]histogram // every latency, for the run's percentiles
}

// add records one unit of work of kind k that took d.
func (s *stats) add(k kind, d time.Duration, failed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := &s.win[k]
	w.n++
	s.total[k]++
	if failed {
		w.failed++
		s.failed[k]++
	}
	w.lat = append(w.lat, d)
	s.all[k].add(d)
}

// take returns the windows since the last call and starts new ones.
func (s *stats) take() [kinds]window {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.win
	s.win = [kinds]window{}
	return w
}

// percentile returns the p-th percentile (0–100) of ds, sorting ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(float64(len(ds)-1) * p / 100)
	return ds[i]
}

// histogram counts durations in buckets 10% apart from 1µs to ~2 hours,
// so the run's percentiles cost fixed memory however long it runs.
type histogram struct{ counts [240]int }

// bucketOf returns the bucket of d.
func bucketOf(d time.Duration) int {
	b := 0
	for v := float64(d) / float64(time.Microsecond); v > 1 && b < len(histogram{}.counts)-1; v /= 1.1 {
		b++
	}
	return b
}

// add counts d.
func (h *histogram) add(d time.Duration) { h.counts[bucketOf(d)]++ }

// percentile returns the upper bound of the bucket that holds the p-th
// percentile (0–100): at most 10% above the true value.
func (h *histogram) percentile(p float64) time.Duration {
	n := 0
	for _, c := range h.counts {
		n += c
	}
	if n == 0 {
		return 0
	}
	rank := int(float64(n-1)*p/100) + 1
	for b, c := range h.counts {
		rank -= c
		if rank <= 0 {
			return time.Duration(float64(time.Microsecond) * math.Pow(1.1, float64(b)))
		}
	}
	return 0
}
