package auth

import (
	"context"
	"crypto"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// TestReview3_CallerCancelPoisonsJWKSFetch: the first fetch of a JWKS URL
// runs on the context of the call whose token needs it. When that caller
// leaves (an HTTP client disconnects, a NATS caller's budget is short),
// the fetch fails, is counted as the provider's failure, and every other
// caller's valid token is refused for MinRefreshInterval (30 s), although
// the provider is fine.
func TestReview3_CallerCancelPoisonsJWKSFetch(t *testing.T) {
	k := testKeys()
	body := jwksJSON(t, map[string]crypto.PublicKey{"a": &k.rsaA.PublicKey})
	var n atomic.Int32
	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			arrived <- struct{}{}
			<-r.Context().Done() // the first fetch is slow; its caller leaves meanwhile
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)

	v, err := NewVerifier(JWTOptions{JWKSURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jwt.SigningMethodRS256, k.rsaA, "a", claims(nil))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := v.Verify(ctx, tok); done <- err }()
	<-arrived
	cancel()
	<-done // the leaving caller is refused: fair

	// Another caller, with all the time it needs, and a provider that answers.
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Errorf("a valid token is refused because another caller left during the first JWKS fetch: %v (fetches: %d)", err, n.Load())
	}
}
