package ferry_test

import (
	"context"
	"flag"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// corsService is the secured orders service allowing browsers of origins.
func corsService(t *testing.T, origins string) *ferry.Service {
	t.Helper()
	cfg := ferrytest.Config(t)
	cfg.CORSOrigins = origins
	cfg.APIKeysFile = writeKeys(t, "web "+ferry.HashAPIKey("web-key")+" orders:write\n")
	svc := ferry.MustNew("orders", "1.0.0", quiet, ferry.WithConfig(cfg))
	ferry.Handle(svc, whoamiEP, func(ctx context.Context, _ *Empty) (*PrincipalSeen, error) { return whoami(ctx), nil })
	ferry.Handle(svc, createOrderEP, func(ctx context.Context, _ *NewOrderInput) (*PrincipalSeen, error) { return whoami(ctx), nil })
	return svc
}

func TestCORS(t *testing.T) {
	const app = "https://app.example.com"
	preflight := http.Header{"Origin": {app}, "Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Headers": {"authorization,content-type,x-api-key"}}
	tests := []struct {
		name, origins, method, target string
		header                        http.Header
		status                        int
		allowOrigin                   string // Access-Control-Allow-Origin; "" for none
		check                         func(t *testing.T, h http.Header)
	}{
		{name: "off: preflight not answered", origins: "", method: "OPTIONS", target: "/orders", header: preflight, status: 405},
		{name: "off: no CORS headers", origins: "", method: "GET", target: "/whoami", header: http.Header{"Origin": {app}, "X-Api-Key": {"web-key"}}, status: 200},
		{name: "preflight", origins: app, method: "OPTIONS", target: "/orders", header: preflight, status: 204, allowOrigin: app,
			check: func(t *testing.T, h http.Header) {
				if m := h.Get("Access-Control-Allow-Methods"); !strings.Contains(m, "POST") {
					t.Errorf("Allow-Methods %q", m)
				}
				if a := strings.ToLower(h.Get("Access-Control-Allow-Headers")); !strings.Contains(a, "authorization") || !strings.Contains(a, "x-api-key") {
					t.Errorf("Allow-Headers %q", a)
				}
				if h.Get("Access-Control-Max-Age") != "600" || h.Get("Access-Control-Allow-Credentials") != "" {
					t.Errorf("Max-Age %q, Allow-Credentials %q", h.Get("Access-Control-Max-Age"), h.Get("Access-Control-Allow-Credentials"))
				}
			}},
		{name: "preflight from another origin", origins: app, method: "OPTIONS", target: "/orders",
			header: http.Header{"Origin": {"https://evil.example"}, "Access-Control-Request-Method": {"POST"}}, status: 204},
		{name: "simple request", origins: app, method: "GET", target: "/whoami", header: http.Header{"Origin": {app}, "X-Api-Key": {"web-key"}}, status: 200, allowOrigin: app,
			check: func(t *testing.T, h http.Header) {
				if e := h.Get("Access-Control-Expose-Headers"); !strings.Contains(e, "X-Request-Id") || !strings.Contains(e, "Www-Authenticate") {
					t.Errorf("Expose-Headers %q", e)
				}
			}},
		{name: "a refusal is readable by the page", origins: app, method: "GET", target: "/whoami", header: http.Header{"Origin": {app}}, status: 401, allowOrigin: app},
		{name: "another origin", origins: app, method: "GET", target: "/whoami", header: http.Header{"Origin": {"https://evil.example"}, "X-Api-Key": {"web-key"}}, status: 200},
		{name: "wildcard subdomain", origins: "https://*.example.com", method: "GET", target: "/whoami", header: http.Header{"Origin": {"https://shop.example.com"}, "X-Api-Key": {"web-key"}}, status: 200, allowOrigin: "https://shop.example.com"},
		{name: "any origin", origins: "*", method: "GET", target: "/whoami", header: http.Header{"Origin": {"https://anyone.example"}, "X-Api-Key": {"web-key"}}, status: 200, allowOrigin: "*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := corsService(t, tt.origins)
			ferrytest.Start(t, svc)
			status, h, body := callHTTP(t, ferrytest.URL(t, svc), tt.method, tt.target, "", tt.header)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, body)
			}
			if got := h.Get("Access-Control-Allow-Origin"); got != tt.allowOrigin {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, tt.allowOrigin)
			}
			if tt.check != nil {
				tt.check(t, h)
			}
		})
	}
}

func TestCORSSetting(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg, err := ferry.LoadConfigEnv(fs, nil, map[string]string{"FERRY_CORS_ORIGINS": " https://a.example , https://b.example:8443,"})
	if err != nil || cfg.CORSOrigins != "https://a.example,https://b.example:8443" {
		t.Errorf("FERRY_CORS_ORIGINS read as %q, %v", cfg.CORSOrigins, err)
	}
	for _, bad := range []string{"a.example", "https://a.example/path", "ftp://a.example", "https://user@a.example"} {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		if _, err := ferry.LoadConfigEnv(fs, []string{"-cors-origins", bad}, nil); err == nil || !strings.Contains(err.Error(), "cors-origins") {
			t.Errorf("-cors-origins %q: %v", bad, err)
		}
	}
}
