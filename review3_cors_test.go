package ferry_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// TestReview3_CORSOriginWildcardAnywhere: checkOrigin (auth.go) documents
// origins as scheme://host[:port] "whose host may start with one *.
// wildcard", but it accepts a * anywhere in the host, which rs/cors reads as
// a prefix/suffix match: "https://*example.com" (a forgotten dot) allows
// https://evilexample.com, and "https://app.example.com*" allows
// https://app.example.com.evil.net. Such a setting should fail the start.
func TestReview3_CORSOriginWildcardAnywhere(t *testing.T) {
	for _, tc := range []struct{ origins, evil string }{
		{"https://*example.com", "https://evilexample.com"},
		{"https://app.example.com*", "https://app.example.com.evil.net"},
	} {
		t.Run(tc.origins, func(t *testing.T) {
			cfg := ferrytest.Config(t)
			cfg.CORSOrigins = tc.origins
			svc, err := ferry.New("orders", "1.0.0", quiet, ferry.WithConfig(cfg))
			if err != nil {
				return // refused: good
			}
			ferry.Get(svc, "quick", "/quick", func(_ context.Context, _ *Empty) (*okOutput, error) { return &okOutput{}, nil })
			ferrytest.Start(t, svc)
			_, h, _ := callHTTP(t, ferrytest.URL(t, svc), http.MethodGet, "/quick", "", http.Header{"Origin": {tc.evil}})
			t.Errorf("origin setting %q was accepted, and lets %s read answers (Access-Control-Allow-Origin %q)", tc.origins, tc.evil, h.Get("Access-Control-Allow-Origin"))
		})
	}
}
