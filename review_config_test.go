package ferry_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// Found by review: MaxBody is documented (and checked) as "at most 64 MiB", but the
// embedded broker's max payload is MaxBody+64 KiB, which nats-server refuses
// above its max_pending (64 MiB): a host whose MaxBody is the documented
// maximum cannot start its embedded broker.
func TestMaxBodyAtItsDocumentedLimitStartsTheBroker(t *testing.T) {
	cfg := ferrytest.Config(t)
	cfg.MaxBody = ferry.MaxMaxBody
	svc := ferry.MustNew("big", "1.0.0", ferry.WithConfig(cfg), ferry.WithNATS(), quiet)
	ferry.Post(svc, "store", "/store", func(_ context.Context, in *UploadInput) (*UploadOutput, error) {
		return &UploadOutput{}, nil
	})
	h, err := ferry.NewHost(ferry.WithConfig(cfg), quiet)
	if err != nil {
		t.Fatalf("NewHost with MaxBody = MaxMaxBody: %v", err)
	}
	if err := h.Add(svc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.Start(ctx); err != nil {
		t.Fatalf("a host with MaxBody at its documented maximum (64 MiB) does not start: %v", err)
	}
	_ = h.Shutdown(ctx)
}

// Found by review: Host.Add does not refuse a service another host is running
// ("It fails if ... a service is already hosted"; "A service is started by
// one host at a time"), and before anything fails it rewrites the running
// service's configuration: its body limit (a request the running host must
// refuse with 413 is now accepted), logger and middleware chain, racing the
// requests it is serving.
func TestAddDoesNotRewriteAServiceAnotherHostRuns(t *testing.T) {
	small := ferrytest.Config(t)
	small.MaxBody = 1 << 10
	svc := ferry.MustNew("uploads", "1.0.0") // takes its host's configuration
	ferry.Post(svc, "store", "/store", func(_ context.Context, in *UploadInput) (*UploadOutput, error) {
		out := &UploadOutput{}
		out.Body.Size = len(in.Body.Data)
		return out, nil
	})
	ferrytest.StartWith(t, small, svc)
	url := ferrytest.URL(t, svc) + "/store"
	body := `{"data":"` + strings.Repeat("x", 8<<10) + `"}`
	post := func(body string) int {
		resp, err := http.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(body); got != http.StatusRequestEntityTooLarge {
		t.Fatalf("an 8 KiB body to a 1 KiB limit: %d, want 413", got)
	}

	// Requests in flight while another host adds the service.
	stop := make(chan struct{})
	var served atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				post(`{"data":"small"}`)
				served.Add(1)
			}
		}
	})
	for served.Load() < 5 {
		time.Sleep(time.Millisecond)
	}
	big := ferrytest.Config(t)
	big.MaxBody = 32 << 20
	other, err := ferry.NewHost(ferry.WithConfig(big), quiet)
	if err != nil {
		t.Fatal(err)
	}
	addErr := other.Add(svc)
	for n := served.Load(); served.Load() < n+5; {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if addErr == nil {
		t.Errorf("Host.Add accepted a service another host is running")
	}
	if got := post(body); got != http.StatusRequestEntityTooLarge {
		t.Errorf("after another host's Add, the running service answers an 8 KiB body with %d, want 413 (its host's 1 KiB limit)", got)
	}
}
