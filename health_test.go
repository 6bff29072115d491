package ferry_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// get returns the status and body of a GET.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestReadinessDuringTheDrainDelay: /healthz and /readyz answer 200 while
// the host runs; at the start of a shutdown /readyz answers 503 (problem
// details) for the drain delay while the endpoints still serve.
func TestReadinessDuringTheDrainDelay(t *testing.T) {
	cfg := ferrytest.Config(t)
	cfg.DrainDelay = time.Second
	svc := ferry.MustNew("items", "1.0.0")
	ferry.Get(svc, "ping", "/ping", func(context.Context, *Empty) (*Empty, error) { return &Empty{}, nil })
	ferry.Subscribe(svc, placed, "ship", func(context.Context, *OrderPlaced) error { return nil })
	h := hostWith(t, cfg, svc)
	base := "http://" + svc.Addr().String()
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := get(t, base+path); code != http.StatusOK {
			t.Fatalf("%s: %d %s", path, code, body)
		}
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- h.Shutdown(ctx)
	}()
	ferrytest.Eventually(t, func() bool { code, _ := get(t, base+"/readyz"); return code == http.StatusServiceUnavailable },
		"/readyz answers 503 once the shutdown starts")
	code, body := get(t, base+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "draining") || !strings.Contains(body, `"code":"not_ready"`) {
		t.Errorf("/readyz while draining: %d %s", code, body)
	}
	if code, _ := get(t, base+"/ping"); code != http.StatusNoContent && code != http.StatusOK {
		t.Errorf("an endpoint during the drain delay answered %d", code)
	}
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz during the drain delay answered %d", code)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// TestReadinessFollowsTheBroker: a host on an external broker is not
// ready while the broker is gone, and ready again once it is back.
func TestReadinessFollowsTheBroker(t *testing.T) {
	b := newBrokerProcess(t)
	cfg := ferrytest.Config(t)
	cfg.NATSURL = b.url()
	svc := ferry.MustNew("items", "1.0.0", ferry.WithNATS())
	ferry.Get(svc, "ping", "/ping", func(context.Context, *Empty) (*Empty, error) { return &Empty{}, nil })
	h := hostWith(t, cfg, svc)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
	})
	url := "http://" + svc.Addr().String() + "/readyz"
	if code, body := get(t, url); code != http.StatusOK {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	b.kill()
	ferrytest.Eventually(t, func() bool { code, _ := get(t, url); return code == http.StatusServiceUnavailable },
		"/readyz answers 503 while the broker is gone")
	if _, body := get(t, url); !strings.Contains(body, "broker") {
		t.Errorf("/readyz does not name the broker: %s", body)
	}
	b.start()
	ferrytest.Eventually(t, func() bool { code, _ := get(t, url); return code == http.StatusOK }, "/readyz answers 200 once the broker is back")
}

// TestCallsFailFastWithoutTheBroker: while the broker is gone, a call and
// a publish fail at once with 503 broker_unavailable instead of waiting
// out their deadline.
func TestCallsFailFastWithoutTheBroker(t *testing.T) {
	b := newBrokerProcess(t)
	cfg := ferrytest.Config(t)
	cfg.NATSURL = b.url()
	svc := ferry.MustNew("gateway", "1.0.0", ferry.WithNATS())
	ferry.NewPublisher(svc, placed)
	h := hostWith(t, cfg, svc)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
	})
	b.kill()
	ferrytest.Eventually(t, func() bool { return h.NATS().Status() != nats.CONNECTED }, "the client sees the broker gone")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a deadline it must not wait out
	defer cancel()
	done := make(chan error, 2)
	go func() { _, err := Absent.Call(ctx, svc.Client(), &Empty{}); done <- err }()
	go func() {
		_, err := placed.Publish(ctx, svc.Client(), &OrderPlaced{OrderID: "o", Quantity: 1})
		done <- err
	}()
	for range 2 {
		select {
		case err := <-done:
			var fe *ferry.Error
			if !errors.Is(err, ferry.ErrBrokerUnavailable) || !errors.As(err, &fe) || fe.Status != http.StatusServiceUnavailable || fe.Code != "broker_unavailable" {
				t.Errorf("with the broker gone: %v", err)
			}
		case <-time.After(hangBound):
			t.Fatal("a call or publish waits for a broker that is gone")
		}
	}
}

// TestSpentBudgetIsNotAnError: a handler that stops because its call's
// deadline passed is logged at info, not as a failure of the service.
func TestSpentBudgetIsNotAnError(t *testing.T) {
	logs := &syncBuffer{}
	svc := ferry.MustNew("slow", "1.0.0", ferry.WithNATS(), ferry.WithLogger(newLogger(logs)))
	ferry.Get(svc, "wait", "/wait", func(ctx context.Context, _ *Empty) (*Empty, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	h := ferrytest.Start(t, svc)
	wait := ferry.Endpoint[Empty, Empty]{Service: "slow", Name: "wait", Method: "GET", Path: "/wait"}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	// The callee's budget ends with the caller's: either side may answer
	// the 504 first.
	var fe *ferry.Error
	if _, err := wait.Call(ctx, h.Client, &Empty{}); !errors.As(err, &fe) || fe.Status != http.StatusGatewayTimeout {
		t.Fatalf("Call = %v, want a 504", err)
	}
	ferrytest.Eventually(t, func() bool { return strings.Contains(logs.String(), "deadline passed") }, "the handler's stop is logged")
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("a spent budget is logged as an error:\n%s", logs)
	}
}
