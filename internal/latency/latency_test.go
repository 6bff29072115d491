package latency

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestBucketsBound: every latency from 1µs to 68s is reported within
// 6.25% of itself, and buckets are in order.
func TestBucketsBound(t *testing.T) {
	prev := -1
	for d := time.Duration(1 << minShift); d < 1<<maxShift; d += d/97 + 1 {
		b := bucket(d)
		if b < prev {
			t.Fatalf("bucket(%v) = %d after %d", d, b, prev)
		}
		prev = b
		m := middle(b)
		if diff := float64(m-d) / float64(d); diff > 1.0/16 || diff < -1.0/16 {
			t.Fatalf("bucket of %v stands for %v: %.1f%% off", d, m, 100*diff)
		}
	}
	for _, d := range []time.Duration{-1, 0, 1, 1023} {
		if b := bucket(d); b != 0 {
			t.Errorf("bucket(%v) = %d, want 0", d, b)
		}
	}
	if b := bucket(time.Hour); b != numBuckets-1 {
		t.Errorf("bucket(1h) = %d, want the last", b)
	}
}

// TestSummary: percentiles, counts and rate of a window against the exact
// figures of the same samples.
func TestSummary(t *testing.T) {
	cases := []struct {
		name    string
		samples func(i int) time.Duration
		n       int
	}{
		{"constant 2ms", func(int) time.Duration { return 2 * time.Millisecond }, 100},
		{"uniform 1-100ms", func(i int) time.Duration { return time.Duration(1+i%100) * time.Millisecond }, 1000},
		{"long tail", func(i int) time.Duration {
			if i%100 == 0 {
				return 3 * time.Second
			}
			return 500 * time.Microsecond
		}, 1000},
		{"one", func(int) time.Duration { return 40 * time.Microsecond }, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var w Window
			now := time.Unix(1_700_000_000, 0)
			var exact []time.Duration
			for i := range tc.n {
				d := tc.samples(i)
				exact = append(exact, d)
				w.Record(now.Add(time.Duration(i)*time.Millisecond), d, i%10 == 0)
			}
			slices.Sort(exact)
			s := w.Summary(now.Add(30 * time.Second))
			if s.Requests != uint64(tc.n) || s.Errors != uint64((tc.n+9)/10) {
				t.Errorf("requests %d errors %d", s.Requests, s.Errors)
			}
			for _, q := range []struct {
				got  time.Duration
				rank float64
			}{{s.P50, 0.5}, {s.P99, 0.99}} {
				i := int(q.rank*float64(tc.n)+0.999999) - 1
				want := exact[max(i, 0)]
				if diff := float64(q.got-want) / float64(want); diff > 1.0/16 || diff < -1.0/16 {
					t.Errorf("p%.0f = %v, exact %v", 100*q.rank, q.got, want)
				}
			}
			if s.Rate <= 0 {
				t.Errorf("rate %v", s.Rate)
			}
		})
	}
}

// TestWindowSlides: requests older than the span no longer count, and a
// slot is reused for a new period.
func TestWindowSlides(t *testing.T) {
	var w Window
	t0 := time.Unix(1_700_000_000, 0)
	w.Record(t0, time.Millisecond, false)
	w.Record(t0.Add(SlotWidth), 2*time.Millisecond, false)
	if s := w.Summary(t0.Add(SlotWidth)); s.Requests != 2 {
		t.Fatalf("%d requests in the window, want 2", s.Requests)
	}
	if s := w.Summary(t0.Add(Span + time.Second)); s.Requests != 1 || s.P50 < 1900*time.Microsecond {
		t.Fatalf("after the first slot left the window: %+v", s)
	}
	w.Record(t0.Add(Span), 5*time.Millisecond, true) // the first slot again
	s := w.Summary(t0.Add(Span))
	if s.Requests != 2 || s.Errors != 1 {
		t.Fatalf("after reusing the first slot: %+v", s)
	}
	if s := w.Summary(t0.Add(10 * Span)); s != (Summary{}) {
		t.Fatalf("long after: %+v", s)
	}
	// The rate counts from the first request when it is younger than the span.
	if s := w.Summary(t0.Add(Span)); s.Rate < 2/Span.Seconds() {
		t.Errorf("rate %v", s.Rate)
	}
}

// TestConcurrentRecords: records from many goroutines are all counted
// (run with -race).
func TestConcurrentRecords(t *testing.T) {
	e := NewEndpoints([]string{"get", "put"})
	now := time.Now()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 1000 {
				e.Record("get", TransportHTTP, now, time.Duration(r.IntN(int(time.Millisecond))), false)
				e.Record("get", TransportNATS, now, time.Millisecond, false)
				e.Record("unknown", TransportHTTP, now, time.Millisecond, false)
				e.Record("get", "memory", now, time.Millisecond, false)
			}
		})
	}
	wg.Wait()
	d := e.Data("get", now)
	if d.HTTP.Requests != 8000 || d.NATS.Requests != 8000 || d.Window != Span {
		t.Errorf("%+v", d)
	}
	if e.Data("unknown", now) != nil {
		t.Error("data for an unknown endpoint")
	}
	if d := e.Data("put", now); d.HTTP != (Summary{}) || d.NATS != (Summary{}) {
		t.Errorf("put: %+v", d)
	}
}

func BenchmarkRecord(b *testing.B) {
	e := NewEndpoints([]string{"get"})
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		e.Record("get", TransportHTTP, now, 1234*time.Microsecond, false)
	}
}
