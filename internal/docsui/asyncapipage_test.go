package docsui

import (
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

var asyncSpecRE = regexp.MustCompile(`<div id="asyncapi" data-spec-url="([^"]*)">`)

// TestAsyncAPIPage: with WithAsyncAPI the handler serves the AsyncAPI
// page under prefix/asyncapi, links the two pages, and serves the
// page's assets, gzipped for clients that accept it; without it there is
// neither page nor link.
func TestAsyncAPIPage(t *testing.T) {
	for _, mux := range []bool{false, true} {
		const prefix = "/services/orders/docs"
		var h http.Handler = New(prefix, "orders 1.0.0", "/services/orders/openapi.json", WithAsyncAPI("/services/orders/asyncapi.json"))
		if mux {
			m := http.NewServeMux()
			for _, p := range Patterns(prefix) {
				m.Handle(p, h)
			}
			h = m
		}
		swagger := do(t, h, http.MethodGet, prefix).Body.String()
		if !strings.Contains(swagger, `<a href="`+prefix+`/asyncapi">`) {
			t.Errorf("the OpenAPI page has no link to the AsyncAPI page:\n%s", swagger)
		}
		rec := do(t, h, http.MethodGet, prefix+"/asyncapi")
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
			t.Fatalf("GET %s/asyncapi: %d %q", prefix, rec.Code, rec.Header().Get("Content-Type"))
		}
		page := rec.Body.String()
		if m := asyncSpecRE.FindStringSubmatch(page); m == nil || html.UnescapeString(m[1]) != "/services/orders/asyncapi.json" {
			t.Errorf("AsyncAPI page spec URL: %v\n%s", m, page)
		}
		if !strings.Contains(page, `<a href="`+prefix+`">`) {
			t.Errorf("the AsyncAPI page has no link back to the OpenAPI page")
		}
		csp := rec.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self' 'unsafe-eval'") || !strings.Contains(csp, "connect-src 'self'") {
			t.Errorf("AsyncAPI page CSP = %q", csp)
		}
		if strings.Contains(do(t, h, http.MethodGet, prefix).Header().Get("Content-Security-Policy"), "unsafe-eval") {
			t.Error("the OpenAPI page allows unsafe-eval")
		}
		if scripts := scriptRE.FindAllStringSubmatch(page, -1); len(scripts) != 2 || strings.TrimSpace(scripts[0][2]+scripts[1][2]) != "" {
			t.Errorf("want two external scripts and no inline script: %v", scripts)
		}
		wantType := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
		var refs []string
		for _, l := range linkRE.FindAllStringSubmatch(page, -1) {
			if ref := html.UnescapeString(l[1]); strings.Contains(ref, "?v=") {
				refs = append(refs, ref)
			}
		}
		if len(refs) != 3 {
			t.Fatalf("asset references %v, want 3 (css, bundle, init)", refs)
		}
		for _, ref := range refs {
			path, _, _ := strings.Cut(ref, "?")
			gz := do(t, h, http.MethodGet, ref, "Accept-Encoding", "gzip")
			plain := do(t, h, http.MethodGet, ref)
			ext := path[strings.LastIndex(path, "."):]
			for _, r := range []struct {
				name string
				code int
				ct   string
			}{{"gzip", gz.Code, gz.Header().Get("Content-Type")}, {"plain", plain.Code, plain.Header().Get("Content-Type")}} {
				if r.code != http.StatusOK || r.ct != wantType[ext] {
					t.Errorf("GET %s (%s): %d %q", ref, r.name, r.code, r.ct)
				}
			}
			big := !strings.HasSuffix(path, "init.js")
			if got := gz.Header().Get("Content-Encoding") == "gzip"; got != big {
				t.Errorf("GET %s accepting gzip: Content-Encoding %q", ref, gz.Header().Get("Content-Encoding"))
			}
			if plain.Header().Get("Content-Encoding") != "" || len(body(t, gz)) != plain.Body.Len() {
				t.Errorf("GET %s: the plain body is not the gzipped one decoded", ref)
			}
		}
	}

	h := New("/docs", "Items", "/openapi.json")
	if rec := do(t, h, http.MethodGet, "/docs/asyncapi"); rec.Code != http.StatusNotFound {
		t.Errorf("without WithAsyncAPI, /docs/asyncapi: %d, want 404", rec.Code)
	}
	if strings.Contains(do(t, h, http.MethodGet, "/docs").Body.String(), "asyncapi") {
		t.Error("without WithAsyncAPI, the OpenAPI page links to an AsyncAPI page")
	}
}
