package ferry_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// Contract of the service the redaction tests call: it forwards its
// caller's API key to an upstream, as a query parameter.
var review13Forward = ferry.Endpoint[Empty, Empty]{Service: "relay", Name: "forward", Method: http.MethodGet, Path: "/forward"}

// TestReview13_RedactionMissesCredentialsTheWayHandlersQuoteThem: a
// handler forwards its caller's API key to an upstream the usual way, in
// the query string, and returns the upstream's error (net/http's, which
// quotes the URL). docs/security.md says the credentials a request carries
// are redacted from the handler errors Ferry logs, "even when a handler
// wrapped them into its error". Two keys Ferry accepts as valid leak:
//
//   - a key with characters the query escapes ('+', '/', '=': base64 keys)
//     is logged escaped (sk%2Blive…), which redactCredentials never looks
//     for (it replaces the raw header value only);
//   - a key shorter than minSecret (8) is never redacted at all, though
//     Ferry's keys file accepts keys of any length.
//
// FAILS on the current code: both keys are in the log.
func TestReview13_RedactionMissesCredentialsTheWayHandlersQuoteThem(t *testing.T) {
	const base64Key = "sk+live/Q2hhbmdlTWVQbGVhc2U+ZmVycnk=" // a valid key, 36 characters
	const shortKey = "k3y-7ch"                               // a valid key, 7 characters
	apiKeys := writeKeys(t, "billing "+ferry.HashAPIKey(base64Key)+" relay:read\n"+
		"ops "+ferry.HashAPIKey(shortKey)+" relay:read\n")

	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := ferrytest.Config(t)
	cfg.APIKeysFile = apiKeys
	svc := ferry.MustNew("relay", "1.0.0", ferry.WithConfig(cfg), ferry.WithLogger(logger))
	upstream := "http://" + ferrytest.FreeAddr(t) + "/v1/charges" // nothing listens: the call fails
	ferry.Handle(svc, review13Forward, func(ctx context.Context, _ *Empty) (*Empty, error) {
		key := ferry.RequestFromContext(ctx).Header(ferry.HeaderAPIKey)
		resp, err := http.Get(upstream + "?" + url.Values{"api_key": {key}}.Encode())
		if err != nil {
			return nil, fmt.Errorf("upstream: %w", err)
		}
		resp.Body.Close()
		return nil, fmt.Errorf("upstream answered %s for key %s", resp.Status, key)
	})
	ferrytest.StartWith(t, cfg, svc)
	base := ferrytest.URL(t, svc)

	for _, key := range []string{base64Key, shortKey} {
		status, _, body := callHTTP(t, base, http.MethodGet, "/forward", "", http.Header{ferry.HeaderAPIKey: {key}})
		if status != http.StatusInternalServerError {
			t.Fatalf("key %q: status %d %s; want the handler's failure, 500", key, status, body)
		}
	}
	log := logs.String()
	if !strings.Contains(log, "handler failed") {
		t.Fatalf("the failures were not logged:\n%s", log)
	}
	for what, secret := range map[string]string{
		"query-escaped base64 API key": url.QueryEscape(base64Key),
		"7-character API key":          shortKey,
	} {
		for line := range strings.Lines(log) {
			if strings.Contains(line, secret) {
				t.Errorf("the %s is in the log: %s", what, line)
			}
		}
	}
}
