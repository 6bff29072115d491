// Package latency keeps recent request latencies in bounded memory, so a
// service can tell other programs its percentiles and rates without them
// scraping anything: a Window is a sliding window of a fixed number of
// time slots, each a fixed array of log-linear buckets (8 per power of two
// from 1µs to about 69s), updated with atomics only. A percentile read
// from it is the middle of its bucket: within 6.25% of the exact value
// for latencies from 1µs to 69s.
package latency

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// Shape of a Window: slots × slotWidth is the window.
const (
	// Slots is the number of time slots a window keeps.
	Slots = 6
	// SlotWidth is the time one slot covers.
	SlotWidth = 10 * time.Second
	// Span is the time a window covers.
	Span = Slots * SlotWidth
)

// Buckets: bucket 0 holds everything below 2^minShift ns (~1µs); then
// subBuckets linear buckets per power of two up to 2^maxShift ns (~69s);
// the last bucket holds everything above.
const (
	minShift   = 10
	maxShift   = 36
	subBits    = 3
	subBuckets = 1 << subBits
	numBuckets = 1 + (maxShift-minShift)*subBuckets + 1
)

// slot counts the requests that ended in one SlotWidth of time.
type slot struct {
	epoch    atomic.Int64 // which SlotWidth since the Unix epoch it counts; 0 before first use
	requests atomic.Uint64
	errors   atomic.Uint64
	buckets  [numBuckets]atomic.Uint32
}

// Window is a sliding window of request latencies. Its zero value is
// ready to use; it holds about 5 KiB whatever the traffic. It is safe for
// concurrent use: Record takes no lock except when it moves to a new slot
// (once per SlotWidth). A Summary read while a slot is reset may miss
// requests recorded in that instant: the figures are statistics, not
// accounts.
type Window struct {
	mu    sync.Mutex // held while a slot is reset
	slots [Slots]slot
	first atomic.Int64 // when the first request was recorded, Unix ns
}

// Record counts one request that ended at end and took d; failed marks a
// failure on the server's side.
func (w *Window) Record(end time.Time, d time.Duration, failed bool) {
	ns := end.UnixNano()
	epoch := ns / int64(SlotWidth)
	s := &w.slots[epoch%Slots]
	if s.epoch.Load() != epoch {
		w.rotate(s, epoch)
	}
	if w.first.Load() == 0 {
		w.first.CompareAndSwap(0, ns)
	}
	s.buckets[bucket(d)].Add(1)
	s.requests.Add(1)
	if failed {
		s.errors.Add(1)
	}
}

// rotate resets s for epoch, unless another Record did it first (or s
// already counts a later epoch: a request that ended that long ago is
// counted in it anyway).
func (w *Window) rotate(s *slot, epoch int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s.epoch.Load() >= epoch {
		return
	}
	s.requests.Store(0)
	s.errors.Store(0)
	for i := range s.buckets {
		s.buckets[i].Store(0)
	}
	s.epoch.Store(epoch)
}

// Summary is what a window tells about the requests that ended in it.
type Summary struct {
	// Requests and Errors count the requests, and the failures on the
	// server's side among them, in the window.
	Requests uint64 `json:"requests"`
	Errors   uint64 `json:"errors"`
	// Rate is requests per second over the window (over the time since
	// the first request when that is shorter).
	Rate float64 `json:"rate"`
	// P50 and P99 are the median and the 99th percentile latency, in
	// nanoseconds as JSON (time.Duration); 0 without requests.
	P50 time.Duration `json:"p50"`
	P99 time.Duration `json:"p99"`
}

// Summary summarises the requests that ended in the Span before now.
func (w *Window) Summary(now time.Time) Summary {
	epoch := now.UnixNano() / int64(SlotWidth)
	var counts [numBuckets]uint64
	var sum Summary
	for i := range w.slots {
		s := &w.slots[i]
		if e := s.epoch.Load(); e <= epoch-Slots || e > epoch {
			continue
		}
		sum.Requests += s.requests.Load()
		sum.Errors += s.errors.Load()
		for b := range s.buckets {
			counts[b] += uint64(s.buckets[b].Load())
		}
	}
	if sum.Requests == 0 {
		return Summary{}
	}
	// The window ends now and begins Span earlier, or at the first request.
	covered := Span
	if first := w.first.Load(); first > 0 {
		covered = min(covered, time.Duration(now.UnixNano()-first))
	}
	covered = max(covered, time.Second)
	sum.Rate = float64(sum.Requests) / covered.Seconds()
	sum.P50 = quantile(&counts, 0.50)
	sum.P99 = quantile(&counts, 0.99)
	return sum
}

// quantile returns the middle of the bucket that holds the q-quantile of
// the counts.
func quantile(counts *[numBuckets]uint64, q float64) time.Duration {
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	// The rank of the quantile, from 1: the smallest value with at least
	// q of the values at or below it.
	rank := uint64(q*float64(total) + 0.999999)
	rank = max(rank, 1)
	var seen uint64
	for b, c := range counts {
		seen += c
		if seen >= rank {
			return middle(b)
		}
	}
	return middle(numBuckets - 1)
}

// bucket returns the bucket of d.
func bucket(d time.Duration) int {
	if d < 1<<minShift {
		return 0
	}
	n := uint64(d)
	k := bits.Len64(n) - 1 // 2^k <= n < 2^(k+1)
	if k >= maxShift {
		return numBuckets - 1
	}
	sub := int(n>>(k-subBits)) & (subBuckets - 1)
	return 1 + (k-minShift)*subBuckets + sub
}

// middle returns the value a bucket stands for: the middle of its range.
func middle(b int) time.Duration {
	switch {
	case b <= 0:
		return 1 << (minShift - 1)
	case b >= numBuckets-1:
		return 1 << maxShift
	}
	k := (b-1)/subBuckets + minShift
	sub := (b - 1) % subBuckets
	width := int64(1) << (k - subBits)
	low := int64(subBuckets+sub) * width
	return time.Duration(low + width/2)
}

// Transports reported apart, as named in telemetry.Outcome.Transport.
const (
	TransportHTTP = "http"
	TransportNATS = "nats"
)

// Endpoints keeps a window per endpoint of one service and per transport
// (HTTP and NATS): memory fixed by the endpoints declared.
type Endpoints struct {
	byName map[string]*endpointWindows // read-only after NewEndpoints
}

type endpointWindows struct {
	http, nats Window
}

// NewEndpoints returns windows for the endpoints named.
func NewEndpoints(names []string) *Endpoints {
	e := &Endpoints{byName: make(map[string]*endpointWindows, len(names))}
	for _, n := range names {
		e.byName[n] = &endpointWindows{}
	}
	return e
}

// Record counts one request of the endpoint name over transport; other
// endpoints and transports are ignored.
func (e *Endpoints) Record(name, transport string, end time.Time, d time.Duration, failed bool) {
	w := e.byName[name]
	if w == nil {
		return
	}
	switch transport {
	case TransportHTTP:
		w.http.Record(end, d, failed)
	case TransportNATS:
		w.nats.Record(end, d, failed)
	}
}

// Data is an endpoint's recent latency and rate, per transport: the data
// of its $SRV.STATS entry.
type Data struct {
	// Window is the time the figures cover, in nanoseconds as JSON.
	Window time.Duration `json:"window"`
	HTTP   Summary       `json:"http"`
	NATS   Summary       `json:"nats"`
}

// Data returns the endpoint's data at now, or nil for an unknown name.
func (e *Endpoints) Data(name string, now time.Time) *Data {
	w := e.byName[name]
	if w == nil {
		return nil
	}
	return &Data{Window: Span, HTTP: w.http.Summary(now), NATS: w.nats.Summary(now)}
}
