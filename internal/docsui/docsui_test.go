package docsui

import (
	"bytes"
	"compress/gzip"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// setups mount the handler the two ways callers do: used directly, and
// registered on a ServeMux under Patterns.
var setups = []struct {
	name  string
	mount func(prefix, title, specURL string) http.Handler
}{
	{"direct", func(prefix, title, specURL string) http.Handler { return New(prefix, title, specURL) }},
	{"mux", func(prefix, title, specURL string) http.Handler {
		mux := http.NewServeMux()
		h := New(prefix, title, specURL)
		for _, p := range Patterns(prefix) {
			mux.Handle(p, h)
		}
		mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, r *http.Request) {})
		return mux
	}},
}

func do(t *testing.T, h http.Handler, method, target string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// body returns the response body, gunzipped if it is gzip-encoded.
func body(t *testing.T, rec *httptest.ResponseRecorder) []byte {
	t.Helper()
	b := rec.Body.Bytes()
	if rec.Header().Get("Content-Encoding") != "gzip" {
		return b
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("gzip body: %v", err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gzip body: %v", err)
	}
	return plain
}

var (
	titleRE   = regexp.MustCompile(`<title>([^<]*)</title>`)
	specRE    = regexp.MustCompile(`<div id="swagger-ui" data-spec-url="([^"]*)">`)
	linkRE    = regexp.MustCompile(`\s(?:src|href)="([^"]*)"`)
	scriptRE  = regexp.MustCompile(`(?s)<script\b([^>]*)>(.*?)</script>`)
	handlerRE = regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
)

var pageCases = []struct {
	name, prefix, title, specURL string
	wantPrefix                   string // cleaned prefix
	wantSpec                     string // data-spec-url after HTML unescaping
	wantConnect                  string // extra connect-src source, if any
}{
	{"plain", "/docs", "Items", "/openapi.json", "/docs", "/openapi.json", ""},
	{"nested prefix with slash", "/api/v1/docs/", "Items API", "/api/v1/openapi.json", "/api/v1/docs", "/api/v1/openapi.json", ""},
	{"escaping", "/docs", `Tom & "Jerry" <script>alert('x')</script>`, `/openapi.json?a=1&b="x"><script>alert(1)</script>`,
		"/docs", `/openapi.json?a=1&b=%22x%22%3e%3cscript%3ealert%281%29%3c/script%3e`, ""},
	{"absolute spec URL", "/docs", "Items", "https://api.example.com:8443/openapi.json", "/docs", "https://api.example.com:8443/openapi.json", "https://api.example.com:8443"},
	{"javascript spec URL is neutralised", "/docs", "Items", "javascript:alert(1)", "/docs", "#ZgotmplZ", ""},
}

func TestPage(t *testing.T) {
	for _, s := range setups {
		for _, tc := range pageCases {
			t.Run(s.name+"/"+tc.name, func(t *testing.T) {
				h := s.mount(tc.prefix, tc.title, tc.specURL)
				rec := do(t, h, http.MethodGet, tc.wantPrefix)
				if rec.Code != http.StatusOK {
					t.Fatalf("GET %s: status %d, want 200", tc.wantPrefix, rec.Code)
				}
				if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
					t.Errorf("Content-Type %q, want text/html; charset=utf-8", ct)
				}
				page := rec.Body.String()

				m := titleRE.FindStringSubmatch(page)
				if m == nil {
					t.Fatalf("no <title> in page:\n%s", page)
				}
				if got := html.UnescapeString(m[1]); got != tc.title {
					t.Errorf("title %q, want %q", got, tc.title)
				}
				if strings.Contains(tc.title, "<") && strings.Contains(page, tc.title) {
					t.Errorf("title appears unescaped in page")
				}

				m = specRE.FindStringSubmatch(page)
				if m == nil {
					t.Fatalf("no data-spec-url in page:\n%s", page)
				}
				if got := html.UnescapeString(m[1]); got != tc.wantSpec {
					t.Errorf("data-spec-url %q, want %q", got, tc.wantSpec)
				}
				if strings.Contains(page, "<script>") || strings.Contains(page, "alert(1)</script>") {
					t.Errorf("injected markup appears in page:\n%s", page)
				}

				// No inline script of any kind.
				scripts := scriptRE.FindAllStringSubmatch(page, -1)
				if len(scripts) != 2 {
					t.Errorf("%d <script> elements, want 2", len(scripts))
				}
				for _, sc := range scripts {
					if !strings.Contains(sc[1], `src="`) || strings.TrimSpace(sc[2]) != "" {
						t.Errorf("inline script: %s", sc[0])
					}
				}
				if handlerRE.MatchString(page) {
					t.Errorf("page has an inline event handler attribute")
				}

				csp := rec.Header().Get("Content-Security-Policy")
				for _, want := range []string{"default-src 'none'", "script-src 'self';", "connect-src 'self'", "base-uri 'none'"} {
					if !strings.Contains(csp+";", want) {
						t.Errorf("CSP %q lacks %q", csp, want)
					}
				}
				if strings.Contains(csp, "unsafe-eval") {
					t.Errorf("CSP %q allows eval", csp)
				}
				if tc.wantConnect != "" && !strings.Contains(csp, "connect-src 'self' "+tc.wantConnect+";") {
					t.Errorf("CSP %q does not allow connecting to %s", csp, tc.wantConnect)
				}
				if cc := rec.Header().Get("Cache-Control"); cc != "no-cache" {
					t.Errorf("page Cache-Control %q, want no-cache", cc)
				}
			})
		}
	}
}

// TestPageAssets follows every src= and href= of the page: each must be a
// local absolute path under the prefix with a version, and answer 200 with
// the right type, a non-empty body and long-lived caching.
func TestPageAssets(t *testing.T) {
	wantType := map[string]string{
		".js":  "text/javascript; charset=utf-8",
		".css": "text/css; charset=utf-8",
	}
	for _, s := range setups {
		for _, enc := range []string{"", "gzip, deflate, br"} {
			t.Run(s.name+"/accept-encoding="+enc, func(t *testing.T) {
				const prefix = "/docs"
				h := s.mount(prefix, "Items", "/openapi.json")
				page := do(t, h, http.MethodGet, prefix).Body.String()
				links := linkRE.FindAllStringSubmatch(page, -1)
				if len(links) != 3 {
					t.Errorf("%d src/href attributes, want 3 (css, bundle, init)", len(links))
				}
				for _, l := range links {
					ref := html.UnescapeString(l[1])
					if !strings.HasPrefix(ref, prefix+"/") || strings.HasPrefix(ref, "//") ||
						strings.Contains(ref, "http:") || strings.Contains(ref, "https:") {
						t.Errorf("reference %q is not a local path under %s/", ref, prefix)
					}
					path, query, _ := strings.Cut(ref, "?")
					if !strings.HasPrefix(query, "v=") || len(query) < 4 {
						t.Errorf("reference %q has no version query", ref)
					}
					rec := do(t, h, http.MethodGet, ref, "Accept-Encoding", enc)
					if rec.Code != http.StatusOK {
						t.Errorf("GET %s: status %d, want 200", ref, rec.Code)
						continue
					}
					ext := path[strings.LastIndex(path, "."):]
					if ct := rec.Header().Get("Content-Type"); ct != wantType[ext] {
						t.Errorf("GET %s: Content-Type %q, want %q", ref, ct, wantType[ext])
					}
					if len(body(t, rec)) == 0 {
						t.Errorf("GET %s: empty body", ref)
					}
					if cc := rec.Header().Get("Cache-Control"); !strings.Contains(cc, "max-age=31536000") {
						t.Errorf("GET %s: Cache-Control %q, want long-lived", ref, cc)
					}
				}
			})
		}
	}
}

func TestAssets(t *testing.T) {
	cases := []struct {
		name, contentType string
		gzipped           bool   // embedded gzip-compressed
		contains          string // must occur in the (decoded) body
	}{
		{"swagger-ui-bundle.js", "text/javascript; charset=utf-8", true, "SwaggerUIBundle"},
		{"swagger-ui.css", "text/css; charset=utf-8", true, ".swagger-ui"},
		{"init.js", "text/javascript; charset=utf-8", false, "data-spec-url"},
		{"LICENSE", "text/plain; charset=utf-8", false, "Apache License"},
		{"NOTICE", "text/plain; charset=utf-8", false, "swagger-ui"},
		{"swagger-ui-bundle.js.LICENSE.txt", "text/plain; charset=utf-8", false, "license"},
		{"asyncapi-standalone.js", "text/javascript; charset=utf-8", true, "AsyncApiStandalone"},
		{"asyncapi.css", "text/css; charset=utf-8", true, "aui-root"},
		{"asyncapi-init.js", "text/javascript; charset=utf-8", false, "data-spec-url"},
		{"asyncapi-LICENSE", "text/plain; charset=utf-8", false, "Apache License"},
		{"asyncapi-standalone.js.LICENSE.txt", "text/plain; charset=utf-8", false, "React"},
	}
	encodings := []struct {
		accept   string
		wantGzip bool // for gzipped assets
	}{
		{"", false},
		{"gzip", true},
		{"deflate, gzip;q=0.5", true},
		{"gzip;q=0", false},
		{"br", false},
		{"*", true},
	}
	h := New("/docs", "Items", "/openapi.json")
	for _, tc := range cases {
		var bodies [][]byte
		for _, e := range encodings {
			t.Run(tc.name+"/accept-encoding="+e.accept, func(t *testing.T) {
				rec := do(t, h, http.MethodGet, "/docs/"+tc.name, "Accept-Encoding", e.accept)
				if rec.Code != http.StatusOK {
					t.Fatalf("status %d, want 200", rec.Code)
				}
				if ct := rec.Header().Get("Content-Type"); ct != tc.contentType {
					t.Errorf("Content-Type %q, want %q", ct, tc.contentType)
				}
				wantEnc := ""
				if tc.gzipped && e.wantGzip {
					wantEnc = "gzip"
				}
				if ce := rec.Header().Get("Content-Encoding"); ce != wantEnc {
					t.Errorf("Content-Encoding %q, want %q", ce, wantEnc)
				}
				if tc.gzipped && rec.Header().Get("Vary") != "Accept-Encoding" {
					t.Errorf("Vary %q, want Accept-Encoding", rec.Header().Get("Vary"))
				}
				if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
					t.Errorf("no X-Content-Type-Options: nosniff")
				}
				if cl := rec.Header().Get("Content-Length"); cl != strconv.Itoa(rec.Body.Len()) {
					t.Errorf("Content-Length %q, body has %d bytes", cl, rec.Body.Len())
				}
				b := body(t, rec)
				if len(b) == 0 {
					t.Fatalf("empty body")
				}
				if !bytes.Contains(b, []byte(tc.contains)) {
					t.Errorf("body does not contain %q", tc.contains)
				}
				if bytes.Contains(b, []byte("sourceMappingURL")) {
					t.Errorf("body mentions sourceMappingURL")
				}
				bodies = append(bodies, b)
			})
		}
		for i := 1; i < len(bodies); i++ {
			if !bytes.Equal(bodies[0], bodies[i]) {
				t.Errorf("%s: decoded bodies differ between encodings", tc.name)
			}
		}
	}
}

func TestNotFound(t *testing.T) {
	paths := []string{
		"/docs/nope.js",
		"/docs/swagger-ui-bundle.js.gz",
		"/docs/swagger-ui-bundle.js.map",
		"/docs/swagger-ui.css.map",
		"/docs/VERSION",
		"/docs/assets/init.js",
		"/docs/x/init.js",
		"/docs/%2e%2e/init.js",
	}
	for _, s := range setups {
		h := s.mount("/docs", "Items", "/openapi.json")
		for _, p := range paths {
			t.Run(s.name+p, func(t *testing.T) {
				if rec := do(t, h, http.MethodGet, p); rec.Code != http.StatusNotFound {
					t.Errorf("GET %s: status %d, want 404", p, rec.Code)
				}
			})
		}
	}
	// Paths outside the prefix only reach the handler when it is used directly.
	h := New("/docs", "Items", "/openapi.json")
	for _, p := range []string{"/", "/doc", "/docsx", "/docsx/init.js"} {
		if rec := do(t, h, http.MethodGet, p); rec.Code != http.StatusNotFound {
			t.Errorf("direct GET %s: status %d, want 404", p, rec.Code)
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	for _, s := range setups {
		h := s.mount("/docs", "Items", "/openapi.json")
		for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
			for _, p := range []string{"/docs", "/docs/init.js", "/docs/swagger-ui-bundle.js"} {
				t.Run(s.name+"/"+method+p, func(t *testing.T) {
					rec := do(t, h, method, p)
					if rec.Code != http.StatusMethodNotAllowed {
						t.Fatalf("status %d, want 405", rec.Code)
					}
					allow := rec.Header().Get("Allow")
					if !strings.Contains(allow, "GET") || !strings.Contains(allow, "HEAD") {
						t.Errorf("Allow %q, want GET and HEAD", allow)
					}
				})
			}
		}
	}
}

func TestHead(t *testing.T) {
	for _, s := range setups {
		h := s.mount("/docs", "Items", "/openapi.json")
		for _, p := range []string{"/docs", "/docs/init.js", "/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"} {
			for _, enc := range []string{"", "gzip"} {
				t.Run(s.name+p+"/accept-encoding="+enc, func(t *testing.T) {
					get := do(t, h, http.MethodGet, p, "Accept-Encoding", enc)
					head := do(t, h, http.MethodHead, p, "Accept-Encoding", enc)
					if head.Code != http.StatusOK {
						t.Fatalf("HEAD status %d, want 200", head.Code)
					}
					if head.Body.Len() != 0 {
						t.Errorf("HEAD body has %d bytes, want none", head.Body.Len())
					}
					for _, k := range []string{"Content-Type", "Content-Length", "Content-Encoding", "Content-Security-Policy", "ETag", "Cache-Control"} {
						if g, hd := get.Header().Get(k), head.Header().Get(k); g != hd {
							t.Errorf("%s: GET %q, HEAD %q", k, g, hd)
						}
					}
					if cl := get.Header().Get("Content-Length"); cl == "" || cl == "0" {
						t.Errorf("GET Content-Length %q", cl)
					}
				})
			}
		}
	}
}

func TestCaching(t *testing.T) {
	h := New("/docs", "Items", "/openapi.json")
	v := loadAssets()["init.js"].version
	cases := []struct {
		name, target, wantCache string
	}{
		{"current version", "/docs/init.js?v=" + v, "public, max-age=31536000, immutable"},
		{"no version", "/docs/init.js", "no-cache"},
		{"old version", "/docs/init.js?v=000000000000", "no-cache"},
		{"page", "/docs", "no-cache"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(t, h, http.MethodGet, tc.target)
			if cc := rec.Header().Get("Cache-Control"); cc != tc.wantCache {
				t.Errorf("Cache-Control %q, want %q", cc, tc.wantCache)
			}
			etag := rec.Header().Get("ETag")
			if etag == "" {
				t.Fatalf("no ETag")
			}
			if rec := do(t, h, http.MethodGet, tc.target, "If-None-Match", etag); rec.Code != http.StatusNotModified {
				t.Errorf("If-None-Match %s: status %d, want 304", etag, rec.Code)
			}
		})
	}
	// Ranges work on both variants (on the gzip one, over the encoded bytes).
	for _, enc := range []string{"", "gzip"} {
		rec := do(t, h, http.MethodGet, "/docs/swagger-ui.css", "Accept-Encoding", enc, "Range", "bytes=0-9")
		if rec.Code != http.StatusPartialContent || rec.Body.Len() != 10 {
			t.Errorf("Range with Accept-Encoding %q: status %d, %d bytes; want 206, 10 bytes", enc, rec.Code, rec.Body.Len())
		}
		if cl := rec.Header().Get("Content-Length"); cl != "" && cl != "10" {
			t.Errorf("Range with Accept-Encoding %q: Content-Length %s", enc, cl)
		}
	}
	// The gzip and identity variants must not share an ETag.
	a := do(t, h, http.MethodGet, "/docs/swagger-ui.css").Header().Get("ETag")
	b := do(t, h, http.MethodGet, "/docs/swagger-ui.css", "Accept-Encoding", "gzip").Header().Get("ETag")
	if a == b {
		t.Errorf("identity and gzip responses share ETag %s", a)
	}
}

func TestTrailingSlashRedirects(t *testing.T) {
	for _, s := range setups {
		t.Run(s.name, func(t *testing.T) {
			h := s.mount("/docs", "Items", "/openapi.json")
			rec := do(t, h, http.MethodGet, "/docs/")
			if rec.Code != http.StatusMovedPermanently {
				t.Fatalf("status %d, want 301", rec.Code)
			}
			if loc := rec.Header().Get("Location"); loc != "/docs" {
				t.Errorf("Location %q, want /docs", loc)
			}
		})
	}
}

// TestRealServer goes through net/http's client, which asks for gzip and
// decodes it transparently.
func TestRealServer(t *testing.T) {
	mux := http.NewServeMux()
	h := New("/docs", "Items", "/openapi.json")
	for _, p := range Patterns("/docs") {
		mux.Handle(p, h)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	want, err := loadAssets()["swagger-ui-bundle.js"].plain()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Get(srv.URL + "/docs/swagger-ui-bundle.js")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !resp.Uncompressed || !bytes.Equal(got, want) {
		t.Errorf("status %d, uncompressed by client %v, body %d bytes (want %d)", resp.StatusCode, resp.Uncompressed, len(got), len(want))
	}
}

func TestAcceptsGzip(t *testing.T) {
	cases := []struct {
		header []string
		want   bool
	}{
		{nil, false},
		{[]string{""}, false},
		{[]string{"gzip"}, true},
		{[]string{"GZIP"}, true},
		{[]string{"x-gzip"}, true},
		{[]string{"deflate, br"}, false},
		{[]string{"br;q=1.0, gzip;q=0.8, *;q=0.1"}, true},
		{[]string{"gzip;q=0"}, false},
		{[]string{"gzip; q=0.000"}, false},
		{[]string{"gzip;q=0, *"}, false},
		{[]string{"*"}, true},
		{[]string{"*;q=0"}, false},
		{[]string{"identity"}, false},
		{[]string{"br", "gzip"}, true},
		{[]string{"gzip;q=bogus"}, false},
	}
	for _, tc := range cases {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		for _, v := range tc.header {
			r.Header.Add("Accept-Encoding", v)
		}
		if got := acceptsGzip(r); got != tc.want {
			t.Errorf("Accept-Encoding %q: got %v, want %v", tc.header, got, tc.want)
		}
	}
}

func TestPatterns(t *testing.T) {
	cases := []struct {
		prefix string
		want   []string
	}{
		{"/docs", []string{"GET /docs", "GET /docs/{$}", "GET /docs/{asset}"}},
		{"/docs/", []string{"GET /docs", "GET /docs/{$}", "GET /docs/{asset}"}},
		{"/api/v1/docs", []string{"GET /api/v1/docs", "GET /api/v1/docs/{$}", "GET /api/v1/docs/{asset}"}},
	}
	for _, tc := range cases {
		got := Patterns(tc.prefix)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("Patterns(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
		mux := http.NewServeMux() // panics on invalid or conflicting patterns
		for _, p := range got {
			mux.Handle(p, http.NotFoundHandler())
		}
	}
}

func TestInvalidPrefixPanics(t *testing.T) {
	for _, prefix := range []string{"", "/", "docs", "//docs", "/a//b", "/docs/..", "/./docs", "/do cs", "/{docs}", "/docs?x", "/docs#x", "/d%6fcs"} {
		for name, f := range map[string]func(){
			"New":      func() { New(prefix, "t", "/openapi.json") },
			"Patterns": func() { Patterns(prefix) },
		} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s(%q) did not panic", name, prefix)
					}
				}()
				f()
			}()
		}
	}
}

// TestGeneratedFiles checks that assets/ holds what gen.sh makes, for the
// version gen.sh pins.
func TestGeneratedFiles(t *testing.T) {
	gen, err := os.ReadFile("gen.sh")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^VERSION=(\S+)$`).FindSubmatch(gen)
	if m == nil {
		t.Fatal("gen.sh has no VERSION= line")
	}
	ver, err := os.ReadFile("assets/VERSION")
	if err != nil {
		t.Fatal(err)
	}
	am := regexp.MustCompile(`(?m)^ASYNCAPI_VERSION=(\S+)$`).FindSubmatch(gen)
	if am == nil {
		t.Fatal("gen.sh has no ASYNCAPI_VERSION= line")
	}
	for _, want := range []string{"package: swagger-ui-dist\n", "version: " + string(m[1]) + "\n",
		"package: @asyncapi/react-component\n", "version: " + string(am[1]) + "\n"} {
		if !strings.Contains(string(ver), want) {
			t.Errorf("assets/VERSION lacks %q:\n%s", want, ver)
		}
	}
	if !regexp.MustCompile(`(?m)^sha256: [0-9a-f]{64}$`).Match(ver) {
		t.Errorf("assets/VERSION has no sha256 line:\n%s", ver)
	}
	for name, a := range loadAssets() {
		b, err := a.plain()
		if err != nil || len(b) == 0 {
			t.Errorf("asset %s: %d bytes, error %v", name, len(b), err)
		}
	}
}
