package ferry_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/sse"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// TestReview3_DocumentedForwardMiddlewareStoresTokensInEvents:
// docs/security.md (and TestAuthBetweenServices) show a gateway passing
// its caller's token on with a client middleware that sets Authorization
// on every OutgoingMessage. Client middleware wraps publishes too, so
// every event the gateway publishes while handling a request carries the
// user's bearer token into the JetStream stream: stored for the stream's
// MaxAge, readable by every subscriber, copied into dead letters and
// replays, and forwarded again by any subscriber using the same pattern
// (its delivery's Request carries the stored header). The documented
// pattern must restrict itself to calls (m.Kind == ferry.KindEndpoint), or
// Ferry must keep credentials out of events.
func TestReview3_DocumentedForwardMiddlewareStoresTokensInEvents(t *testing.T) {
	// The middleware exactly as docs/security.md writes it.
	forward := func(next ferry.ClientHandler) ferry.ClientHandler {
		return func(ctx context.Context, m *ferry.OutgoingMessage) error {
			if r := ferry.RequestFromContext(ctx); r != nil && r.Header("Authorization") != "" {
				m.Header.Set("Authorization", r.Header("Authorization"))
			}
			return next(ctx, m)
		}
	}
	gateway := ferry.MustNew("gateway", "1.0.0", quiet, ferry.WithNATS(), ferry.WithClientMiddleware(forward))
	pub := ferry.NewPublisher(gateway, placed)
	ferry.Post(gateway, "place", "/place", func(ctx context.Context, _ *Empty) (*Empty, error) {
		_, err := pub.Publish(ctx, &OrderPlaced{OrderID: "o-1", Quantity: 1})
		return &Empty{}, err
	})
	seen := make(chan string, 1)
	audit := ferry.MustNew("audit", "1.0.0", quiet, ferry.WithoutHTTP())
	ferry.Subscribe(audit, placed, "audit", func(ctx context.Context, _ *OrderPlaced) error {
		seen <- ferry.RequestFromContext(ctx).Header("Authorization")
		return nil
	})
	ferrytest.Start(t, gateway, audit)

	const token = "Bearer user-secret-token"
	status, _, body := callHTTP(t, ferrytest.URL(t, gateway), http.MethodPost, "/place", "", http.Header{"Authorization": {token}})
	if status != http.StatusOK && status != http.StatusNoContent {
		t.Fatalf("place: %d %s", status, body)
	}
	if got := <-seen; got != "" {
		t.Errorf("the event stored in the topic's stream carries the user's credentials: Authorization %q", got)
	}
}

// TestReview3_APIOperationsBypassAuthentication: docs/security.md says a
// service that verifies credentials requires them on every endpoint except
// those declared Public, and docs/limits.md tells users to register
// Server-Sent Events streams directly on svc.API() (ferry.Streaming). Such
// operations bypass Ferry's chain, so authentication too: on a service
// that verifies API keys, the stream answers anyone, without credentials,
// and security.md does not say so.
func TestReview3_APIOperationsBypassAuthentication(t *testing.T) {
	svc := ferry.MustNew("secure", "1.0.0", quiet, ferry.WithAPIKeys(ferry.APIKey{Name: "job", Hash: ferry.HashAPIKey("k_0123456789abcdef0123456789")}))
	ferry.Get(svc, "private", "/private", func(context.Context, *Empty) (*okOutput, error) { return &okOutput{}, nil })
	op := huma.Operation{OperationID: "ticks", Method: http.MethodGet, Path: "/ticks"}
	ferry.Streaming(&op)
	sse.Register(svc.API(), op, map[string]any{"tick": tick{}}, func(_ context.Context, _ *struct{}, send sse.Sender) {
		_ = send.Data(tick{N: 1})
	})
	ferrytest.Start(t, svc)
	base := ferrytest.URL(t, svc)
	if status, _, _ := callHTTP(t, base, http.MethodGet, "/private", "", nil); status != http.StatusUnauthorized {
		t.Fatalf("the bound endpoint without credentials: %d, want 401", status)
	}
	if status, _, body := callHTTP(t, base, http.MethodGet, "/ticks", "", nil); status != http.StatusUnauthorized {
		t.Errorf("the stream registered as docs/limits.md says, on a service that requires credentials, answers without them: %d %q", status, body)
	}
}
