package dashboard

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestGuard: the Host, Origin and token checks of every request.
func TestGuard(t *testing.T) {
	g := guard{hosts: listenHosts(mustTCPAddr(t, "127.0.0.1:43123")), token: "tok"}
	for h := range map[string]bool{"dash.example.com:8080": true, "ops.internal": true} {
		g.hosts[normalHost(h)] = true
	}
	tests := []struct {
		name, method, host, origin, site, mode, token, ctype string
		code                                                 string // "" accepted
	}{
		{"GET on the listen address", "GET", "127.0.0.1:43123", "", "", "", "", "", ""},
		{"GET on localhost", "GET", "localhost:43123", "", "", "", "", "", ""},
		{"GET on LOCALHOST", "GET", "LOCALHOST:43123", "", "", "", "", "", ""},
		{"GET on [::1]", "GET", "[::1]:43123", "", "", "", "", "", ""},
		{"GET on a configured host", "GET", "dash.example.com:8080", "", "", "", "", "", ""},
		{"GET on a configured host without port", "GET", "ops.internal", "", "", "", "", "", ""},
		{"rebinding: an attacker's name", "GET", "evil.example:43123", "", "", "", "", "", "unknown_host"},
		{"rebinding: a POST with the right token", "POST", "evil.example:43123", "http://evil.example:43123", "", "", "tok", "application/json", "unknown_host"},
		{"localhost on another port", "GET", "localhost:8080", "", "", "", "", "", "unknown_host"},
		{"no Host", "GET", "", "", "", "", "", "", "unknown_host"},
		{"same origin", "POST", "127.0.0.1:43123", "http://127.0.0.1:43123", "same-origin", "", "tok", "application/json", ""},
		{"no Origin (a tool)", "POST", "localhost:43123", "", "", "", "tok", "application/json; charset=utf-8", ""},
		{"cross-site Origin", "POST", "127.0.0.1:43123", "http://evil.example", "", "", "tok", "application/json", "cross_origin"},
		{"Origin of another port", "POST", "127.0.0.1:43123", "http://127.0.0.1:9999", "", "", "tok", "application/json", "cross_origin"},
		{"Origin null", "POST", "127.0.0.1:43123", "null", "", "", "tok", "application/json", "cross_origin"},
		{"cross-site GET", "GET", "127.0.0.1:43123", "http://evil.example", "", "", "", "", "cross_origin"},
		{"Sec-Fetch-Site cross-site", "GET", "127.0.0.1:43123", "", "cross-site", "", "", "", "cross_origin"},
		{"a link from another site", "GET", "127.0.0.1:43123", "", "cross-site", "navigate", "", "", ""},
		{"a cross-site POST navigation (a form)", "POST", "127.0.0.1:43123", "", "cross-site", "navigate", "tok", "application/json", "cross_origin"},
		{"missing token", "POST", "127.0.0.1:43123", "http://127.0.0.1:43123", "", "", "", "application/json", "bad_token"},
		{"wrong token", "POST", "127.0.0.1:43123", "http://127.0.0.1:43123", "", "", "tok2", "application/json", "bad_token"},
		{"token prefix", "POST", "127.0.0.1:43123", "http://127.0.0.1:43123", "", "", "to", "application/json", "bad_token"},
		{"a form post", "POST", "127.0.0.1:43123", "http://127.0.0.1:43123", "", "", "tok", "application/x-www-form-urlencoded", "not_json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/api/dead-letters/1/replay", nil)
			r.Host = tt.host
			set := func(k, v string) {
				if v != "" {
					r.Header.Set(k, v)
				}
			}
			set("Origin", tt.origin)
			set("Sec-Fetch-Site", tt.site)
			set("Sec-Fetch-Mode", tt.mode)
			set(TokenHeader, tt.token)
			set("Content-Type", tt.ctype)
			ref := g.check(r)
			switch {
			case tt.code == "" && ref != nil:
				t.Errorf("refused %+v, want accepted", *ref)
			case tt.code != "" && ref == nil:
				t.Errorf("accepted, want %s", tt.code)
			case tt.code != "" && ref.code != tt.code:
				t.Errorf("refused %+v, want %s", *ref, tt.code)
			}
		})
	}
}

// TestHandlerRefusesAndSetsHeaders: a refused request is a problem
// document, and every answer carries the security headers.
func TestHandlerRefusesAndSetsHeaders(t *testing.T) {
	h := newDashboard(nil, Config{}.withDefaults(), map[string]bool{normalHost("localhost:1234"): true})
	defer h.close()
	tests := []struct {
		name, method, host, path string
		token                    bool
		status                   int
		ctype                    string
	}{
		{"the page", "GET", "localhost:1234", "/", false, 200, "text/html; charset=utf-8"},
		{"the script", "GET", "localhost:1234", "/app.js", false, 200, "text/javascript; charset=utf-8"},
		{"rebinding", "GET", "attacker.test:1234", "/", false, http.StatusMisdirectedRequest, "application/problem+json"},
		{"a POST without token", "POST", "localhost:1234", "/api/dead-letters/1/delete", false, 403, "application/problem+json"},
		{"a GET of an action", "GET", "localhost:1234", "/api/dead-letters/1/delete", false, 405, ""},
		{"a bad sequence", "POST", "localhost:1234", "/api/dead-letters/x/delete", true, 404, "application/problem+json"},
		{"a bad job ID", "POST", "localhost:1234", "/api/jobs/a%3Cb/cancel", true, 404, "application/problem+json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.path, nil)
			r.Host = tt.host
			if tt.token {
				r.Header.Set(TokenHeader, h.guard.token)
				r.Header.Set("Content-Type", "application/json")
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.status || tt.ctype != "" && w.Header().Get("Content-Type") != tt.ctype {
				t.Errorf("%d %s %s, want %d %s", w.Code, w.Header().Get("Content-Type"), w.Body, tt.status, tt.ctype)
			}
			if w.Header().Get("X-Frame-Options") != "DENY" || w.Header().Get("Content-Security-Policy") != contentSecurityPolicy {
				t.Errorf("security headers missing: %v", w.Header())
			}
		})
	}
}
