package ferry_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// TestReview4_DrainDelayLeavesGraceForInFlightRequests: FERRY_DRAIN_DELAY
// is "part of the grace period", yet nothing refuses (or caps) a delay as
// long as FERRY_SHUTDOWN_GRACE or longer. The delay then takes the whole
// drain deadline, the HTTP server's Shutdown gets a context already over
// and closes every open connection at once: a request in flight when the
// listener closes, which would finish a moment later, is cut off instead of
// answered ("HTTP stops accepting and finishes in-flight requests"). With
// a delay below the grace the same request is answered.
func TestReview4_DrainDelayLeavesGraceForInFlightRequests(t *testing.T) {
	for _, tc := range []struct {
		name         string
		delay, grace time.Duration
	}{
		{"delay below grace", 500 * time.Millisecond, 3 * time.Second},
		{"delay not below grace", 3 * time.Second, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ferrytest.Config(t)
			cfg.DrainDelay, cfg.ShutdownGrace = tc.delay, tc.grace
			inside, release := make(chan struct{}, 1), make(chan struct{})
			svc := ferry.MustNew("slowdrain", "1.0.0", quiet)
			ferry.Get(svc, "wait", "/wait", func(ctx context.Context, _ *Empty) (*Empty, error) {
				inside <- struct{}{}
				<-release // finishes a moment after the listener closes
				return &Empty{}, nil
			})
			h := hostWith(t, cfg, svc)
			base := ferrytest.URL(t, svc)
			addr := base[len("http://"):]
			answered := make(chan error, 1)
			go func() {
				resp, err := http.Get(base + "/wait")
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusNoContent {
						err = &statusError{resp.StatusCode}
					}
				}
				answered <- err
			}()
			<-inside
			stopped := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace) // as Run does
				defer cancel()
				stopped <- h.Shutdown(ctx)
			}()
			// Release the handler once the listener has closed.
			ferrytest.Eventually(t, func() bool {
				c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
				if err != nil {
					return true
				}
				c.Close()
				return false
			}, "the listener closes")
			close(release)
			if err := <-answered; err != nil {
				t.Errorf("a request in flight when the listener closed was not answered: %v", err)
			}
			<-stopped
		})
	}
}

type statusError struct{ status int }

func (e *statusError) Error() string { return http.StatusText(e.status) }
