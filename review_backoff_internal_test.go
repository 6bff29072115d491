package ferry

import (
	"math"
	"testing"
	"time"
)

// Found by review: SubscribeBackoff accepts any maximum at least the initial delay,
// e.g. math.MaxInt64 for "no cap", but backoff doubles without checking for
// overflow: the delay wraps negative and rand.Int64N panics. The worker
// calls Backoff outside its panic recovery (after a failed run, and with
// NumDelivered — which grows without bound — while a dead letter cannot be
// stored, retried at least once a minute), so the panic ends the process.
func TestBackoffDoesNotPanic(t *testing.T) {
	o := defaultSubscribeOptions()
	SubscribeBackoff(time.Second, math.MaxInt64)(&o)
	if err := o.check(); err != nil {
		return // refused at declaration (fine)
	}
	for n := uint64(1); n <= 100; n++ {
		func() {
			defer func() {
				if v := recover(); v != nil {
					t.Fatalf("backoff(%d) with SubscribeBackoff(1s, MaxInt64) panicked: %v", n, v)
				}
			}()
			if d := o.backoff(n); d < 0 {
				t.Fatalf("backoff(%d) = %v, a negative delay", n, d)
			}
		}()
	}
}
