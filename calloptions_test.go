package ferry_test

import (
	"context"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// TestCallOptions: CallHeader reaches the callee, CallTimeout bounds the
// call, and options that cannot work fail the call before it is sent.
func TestCallOptions(t *testing.T) {
	svc := ferry.MustNew("echo", "1.0.0", ferry.WithoutHTTP(), ferry.WithNATS(), quiet)
	type seen struct {
		Body struct {
			Tenant, RequestID, Budget string
		}
	}
	echo := ferry.Endpoint[Empty, seen]{Service: "echo", Name: "echo", Method: http.MethodGet, Path: "/echo"}
	ferry.Handle(svc, echo, func(ctx context.Context, _ *Empty) (*seen, error) {
		req := ferry.RequestFromContext(ctx)
		out := &seen{}
		out.Body.Tenant, out.Body.RequestID, out.Body.Budget = req.Header("X-Tenant"), req.ID, req.Header("Ferry-Timeout")
		return out, nil
	})
	h := ferrytest.Start(t, svc)
	ctx := context.Background()

	out, err := echo.Call(ctx, h.Client, nil, ferry.CallHeader("x-tenant", "acme"), ferry.CallHeader(ferry.HeaderRequestID, "mine"), ferry.CallTimeout(time.Hour))
	if err != nil || out.Body.Tenant != "acme" || out.Body.RequestID != "mine" {
		t.Fatalf("Call = %+v, %v", out, err)
	}
	// An hour asked, the default 10 s deadline is not applied: the budget
	// sent is more than the default's.
	if b, _ := time.ParseDuration(out.Body.Budget + "ms"); b <= ferry.DefaultCallTimeout {
		t.Errorf("budget sent %s ms, want CallTimeout's hour", out.Body.Budget)
	}

	for _, tt := range []struct {
		name string
		opt  ferry.CallOption
		want string
	}{
		{"Ferry's own header", ferry.CallHeader("Ferry-Timeout", "1"), "Ferry's own"},
		{"NATS header", ferry.CallHeader("nats-msg-id", "x"), "Ferry's own"},
		{"content type", ferry.CallHeader("Content-Type", "text/plain"), "Ferry's own"},
		{"bad name", ferry.CallHeader("a b", "x"), "invalid header name"},
		{"zero timeout", ferry.CallTimeout(0), "CallTimeout must be positive"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := echo.Call(ctx, h.Client, nil, tt.opt)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "call echo.echo") {
				t.Errorf("Call = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// TestPublishOptions: PublishHeader reaches the subscriber, of one event
// and of each event of a batch; PublishTimeout bounds the publish; options
// that cannot work fail the publish before anything is sent.
func TestPublishOptions(t *testing.T) {
	cfg := ferrytest.Config(t)
	var mu sync.Mutex
	tenants := map[string]string{}
	sub := ferry.MustNew("tenants", "1.0.0", ferry.WithConfig(cfg), ferry.WithoutHTTP(), quiet)
	ferry.Subscribe(sub, placed, "tenant", func(ctx context.Context, e *OrderPlaced) error {
		mu.Lock()
		defer mu.Unlock()
		tenants[e.OrderID] = ferry.RequestFromContext(ctx).Header("X-Tenant")
		return nil
	})
	h := ferrytest.StartWith(t, cfg, sub)
	ctx := context.Background()

	if _, err := placed.Publish(ctx, h.Client, &OrderPlaced{OrderID: "one", Quantity: 1}, ferry.PublishHeader("x-tenant", "acme"), ferry.PublishTimeout(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := placed.PublishBatch(ctx, h.Client, []*OrderPlaced{{OrderID: "b1", Quantity: 1}, {OrderID: "b2", Quantity: 1}},
		ferry.PublishHeader("X-Tenant", "globex"), ferry.PublishTimeout(time.Minute)); err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(tenants) == 3
	}, "the three events are handled")
	if want := map[string]string{"one": "acme", "b1": "globex", "b2": "globex"}; !maps.Equal(tenants, want) {
		t.Errorf("subscribers saw tenants %v, want %v", tenants, want)
	}

	for _, tt := range []struct {
		name string
		opt  ferry.PublishOption
		want string
	}{
		{"message ID header", ferry.PublishHeader("Nats-Msg-Id", "x"), "Ferry's own"},
		{"source header", ferry.PublishHeader("ferry-source", "x"), "Ferry's own"},
		{"zero timeout", ferry.PublishTimeout(0), "PublishTimeout must be positive"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := placed.Publish(ctx, h.Client, &OrderPlaced{OrderID: "never", Quantity: 1}, tt.opt)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "publish order-placed") {
				t.Errorf("Publish = %v, want an error with %q", err, tt.want)
			}
			_, err = placed.PublishBatch(ctx, h.Client, []*OrderPlaced{{OrderID: "never", Quantity: 1}}, tt.opt)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("PublishBatch = %v, want an error with %q", err, tt.want)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if _, ok := tenants["never"]; ok {
		t.Error("a publish with an invalid option was sent")
	}
}
