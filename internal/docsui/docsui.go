package docsui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed assets/init.js assets/swagger-ui-bundle.js.gz assets/swagger-ui.css.gz
//go:embed assets/LICENSE assets/NOTICE assets/swagger-ui-bundle.js.LICENSE.txt
//go:embed assets/asyncapi-init.js assets/asyncapi-standalone.js.gz assets/asyncapi.css.gz
//go:embed assets/asyncapi-LICENSE assets/asyncapi-standalone.js.LICENSE.txt
var embedded embed.FS

// Names of the assets the page refers to, as they appear after prefix+"/".
const (
	bundleJS = "swagger-ui-bundle.js"
	styleCSS = "swagger-ui.css"
	initJS   = "init.js"

	asyncBundleJS = "asyncapi-standalone.js"
	asyncStyleCSS = "asyncapi.css"
	asyncInitJS   = "asyncapi-init.js"
	// AsyncAPIPage is where, under the prefix, the AsyncAPI page is
	// served (New with WithAsyncAPI).
	AsyncAPIPage = "asyncapi"
)

const (
	typeJS   = "text/javascript; charset=utf-8"
	typeCSS  = "text/css; charset=utf-8"
	typeText = "text/plain; charset=utf-8"
	typeHTML = "text/html; charset=utf-8"

	// cacheVersioned is sent for an asset requested with its current ?v=.
	cacheVersioned = "public, max-age=31536000, immutable"
	// cacheRevalidate is sent for the page and for unversioned asset URLs.
	cacheRevalidate = "no-cache"
)

// asset is one embedded file served under prefix+"/"+name.
type asset struct {
	contentType string
	data        []byte // as embedded: gzip-compressed when gzipped is set
	gzipped     bool
	version     string                 // short hex sha256 of data; the ?v= value and the ETag
	plain       func() ([]byte, error) // data decompressed, computed once on first use
}

// assetFiles maps served names to embedded files and content types.
var assetFiles = []struct {
	name, file, contentType string
}{
	{bundleJS, "assets/swagger-ui-bundle.js.gz", typeJS},
	{styleCSS, "assets/swagger-ui.css.gz", typeCSS},
	{initJS, "assets/init.js", typeJS},
	{"LICENSE", "assets/LICENSE", typeText},
	{"NOTICE", "assets/NOTICE", typeText},
	{"swagger-ui-bundle.js.LICENSE.txt", "assets/swagger-ui-bundle.js.LICENSE.txt", typeText},
	{asyncBundleJS, "assets/asyncapi-standalone.js.gz", typeJS},
	{asyncStyleCSS, "assets/asyncapi.css.gz", typeCSS},
	{asyncInitJS, "assets/asyncapi-init.js", typeJS},
	{"asyncapi-LICENSE", "assets/asyncapi-LICENSE", typeText},
	{"asyncapi-standalone.js.LICENSE.txt", "assets/asyncapi-standalone.js.LICENSE.txt", typeText},
}

// loadAssets builds the asset table once per process, on first use.
var loadAssets = sync.OnceValue(func() map[string]*asset {
	m := make(map[string]*asset, len(assetFiles))
	for _, f := range assetFiles {
		data, err := embedded.ReadFile(f.file)
		if err != nil {
			panic("docsui: embedded asset missing: " + err.Error())
		}
		a := &asset{
			contentType: f.contentType,
			data:        data,
			gzipped:     strings.HasSuffix(f.file, ".gz"),
			version:     shortHash(data),
		}
		if a.gzipped {
			a.plain = sync.OnceValues(func() ([]byte, error) { return gunzip(data) })
		} else {
			a.plain = func() ([]byte, error) { return data, nil }
		}
		m[f.name] = a
	}
	return m
})

func shortHash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	return io.ReadAll(zr)
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<link rel="stylesheet" href="{{.CSS}}">
<script src="{{.Bundle}}" defer></script>
<script src="{{.Init}}" defer></script>
</head>
<body>
<noscript><p>This page needs JavaScript to show the API documentation.</p></noscript>
{{if .Other}}<nav style="font:14px/1.4 sans-serif;padding:8px 20px;background:#fafafa"><a href="{{.Other}}">{{.OtherText}}</a></nav>
{{end}}<div id="{{.Element}}" data-spec-url="{{.SpecURL}}"></div>
</body>
</html>
`))

// Option adjusts the handler New returns.
type Option func(*config)

type config struct {
	asyncAPIURL string
}

// WithAsyncAPI serves a second page at prefix+"/asyncapi" that renders
// the AsyncAPI document at specURL (for example "/asyncapi.json") with the
// AsyncAPI React component, and links the two pages to each other.
func WithAsyncAPI(specURL string) Option {
	return func(c *config) { c.asyncAPIURL = specURL }
}

// page is one HTML page of the handler.
type page struct {
	body []byte
	etag string
	csp  string
}

func newPage(title, element, specURL, css, bundle, init, other, otherText string) *page {
	var buf bytes.Buffer
	err := pageTemplate.Execute(&buf, struct {
		Title, Element, SpecURL, CSS, Bundle, Init, Other, OtherText string
	}{title, element, specURL, css, bundle, init, other, otherText})
	if err != nil {
		panic("docsui: rendering the page: " + err.Error())
	}
	return &page{body: buf.Bytes(), etag: `"` + shortHash(buf.Bytes()) + `"`}
}

// New returns a handler for the docs page mounted at prefix (for example "/docs"):
// prefix itself answers the HTML page, prefix+"/"+asset answers the embedded assets.
// title goes into <title>; specURL (for example "/openapi.json") is the document the page loads.
// The handler answers only GET and HEAD (405 with an Allow header otherwise) and 404 for unknown assets; it sets
// Content-Type, a Content-Security-Policy header on the HTML, and long-lived Cache-Control on versioned assets.
//
// prefix must be an absolute path other than "/" (a trailing slash is
// dropped) without wildcards, spaces, "." or ".." segments; New panics
// otherwise, since that is a programming error. prefix+"/" redirects to
// prefix. The handler looks at the full r.URL.Path, so register it as is
// (see Patterns), not behind http.StripPrefix.
//
// The page's Content-Security-Policy allows scripts and styles only from the
// same origin (plus inline styles, which Swagger UI's Markdown uses), and
// fetches (loading the spec, "Try it out") only to the same origin and to
// the origin of specURL if it is an absolute URL. APIs served from other
// origins therefore cannot be called from "Try it out".
//
// With [WithAsyncAPI], prefix+"/asyncapi" is a second page, under the same
// rules (its policy adds 'unsafe-eval', which the AsyncAPI parser needs).
func New(prefix, title, specURL string, opts ...Option) http.Handler {
	prefix = cleanPrefix(prefix)
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	assets := loadAssets()
	ref := func(name string) string {
		return prefix + "/" + name + "?v=" + assets[name].version
	}
	h := &handler{prefix: prefix, assets: assets}
	other, otherText := "", ""
	if cfg.asyncAPIURL != "" {
		other, otherText = prefix+"/"+AsyncAPIPage, "AsyncAPI: events and NATS calls"
		h.async = newPage(title+" (AsyncAPI)", "asyncapi", cfg.asyncAPIURL,
			ref(asyncStyleCSS), ref(asyncBundleJS), ref(asyncInitJS), prefix, "OpenAPI: HTTP endpoints")
		// The AsyncAPI parser in the bundle compiles its JSON Schema
		// validators with new Function, which needs 'unsafe-eval'; the
		// page's own data is only the document it fetches.
		h.async.csp = strings.Replace(contentSecurityPolicy(cfg.asyncAPIURL), "script-src 'self'", "script-src 'self' 'unsafe-eval'", 1)
	}
	h.page = newPage(title, "swagger-ui", specURL, ref(styleCSS), ref(bundleJS), ref(initJS), other, otherText)
	h.page.csp = contentSecurityPolicy(specURL)
	return h
}

// Patterns returns the ServeMux patterns the handler must be registered under, e.g. "GET /docs" and "GET /docs/{asset}".
// It also returns "GET /docs/{$}", under which the handler redirects to the page.
// prefix is checked and cleaned as by New.
func Patterns(prefix string) []string {
	prefix = cleanPrefix(prefix)
	return []string{
		"GET " + prefix,
		"GET " + prefix + "/{$}",
		"GET " + prefix + "/{asset}",
	}
}

// cleanPrefix drops one trailing slash and panics on prefixes that are not
// usable both as a URL path and in a ServeMux pattern.
func cleanPrefix(prefix string) string {
	p := strings.TrimSuffix(prefix, "/")
	bad := !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "{}?#%\\") ||
		strings.IndexFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0
	if !bad {
		for _, seg := range strings.Split(p[1:], "/") {
			if seg == "" || seg == "." || seg == ".." {
				bad = true
				break
			}
		}
	}
	if bad {
		panic(fmt.Sprintf("docsui: invalid prefix %q: want an absolute path like \"/docs\"", prefix))
	}
	return p
}

// contentSecurityPolicy returns the policy sent with the page. connect-src
// also allows the origin of specURL when that is an absolute http(s) URL.
func contentSecurityPolicy(specURL string) string {
	connect := "'self'"
	if u, err := url.Parse(specURL); err == nil && u.Host != "" && validCSPHost(u.Host) {
		switch strings.ToLower(u.Scheme) {
		case "http", "https":
			connect += " " + strings.ToLower(u.Scheme) + "://" + u.Host
		case "":
			connect += " " + u.Host // scheme-relative "//host/path"
		}
	}
	return strings.Join([]string{
		"default-src 'none'",
		"script-src 'self'",
		// 'unsafe-inline' only for styles: Swagger UI's Markdown renderer
		// writes style attributes (table column alignment). Everything else
		// renders without it (checked with headless Chromium).
		"style-src 'self' 'unsafe-inline'",
		// data: for the icons in swagger-ui.css, blob: for image responses in "Try it out".
		"img-src 'self' data: blob:",
		"media-src 'self' blob:",
		"font-src 'self' data:",
		"connect-src " + connect,
		"base-uri 'none'",
		"form-action 'self'",
		"frame-ancestors 'self'",
	}, "; ")
}

// validCSPHost reports whether host (with an optional port) can go into a
// CSP source expression as it is.
func validCSPHost(host string) bool {
	for _, r := range host {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		case r == '.', r == '-', r == ':', r == '[', r == ']':
		default:
			return false
		}
	}
	return true
}

type handler struct {
	prefix string
	assets map[string]*asset
	page   *page
	async  *page // the AsyncAPI page; nil without WithAsyncAPI
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	switch {
	case p == h.prefix:
		h.servePage(w, r, h.page)
	case p == h.prefix+"/"+AsyncAPIPage && h.async != nil:
		h.servePage(w, r, h.async)
	case p == h.prefix+"/":
		target := h.prefix
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, target, http.StatusMovedPermanently)
	case strings.HasPrefix(p, h.prefix+"/"):
		a, ok := h.assets[p[len(h.prefix)+1:]]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h.serveAsset(w, r, a)
	default:
		http.NotFound(w, r)
	}
}

func (h *handler) servePage(w http.ResponseWriter, r *http.Request, pg *page) {
	hd := w.Header()
	hd.Set("Content-Type", typeHTML)
	hd.Set("Content-Security-Policy", pg.csp)
	hd.Set("Cache-Control", cacheRevalidate)
	hd.Set("ETag", pg.etag)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(pg.body))
}

func (h *handler) serveAsset(w http.ResponseWriter, r *http.Request, a *asset) {
	hd := w.Header()
	hd.Set("Content-Type", a.contentType)
	hd.Set("X-Content-Type-Options", "nosniff")
	if r.URL.Query().Get("v") == a.version {
		hd.Set("Cache-Control", cacheVersioned)
	} else {
		hd.Set("Cache-Control", cacheRevalidate)
	}
	body := a.data
	etag := a.version
	if a.gzipped {
		hd.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			hd.Set("Content-Encoding", "gzip")
			etag += "-gzip"
			if r.Header.Get("Range") == "" {
				// ServeContent leaves Content-Length unset when a
				// Content-Encoding is set; the whole body is sent here.
				hd.Set("Content-Length", strconv.Itoa(len(body)))
			}
		} else {
			plain, err := a.plain()
			if err != nil {
				http.Error(w, "docsui: corrupt embedded asset", http.StatusInternalServerError)
				return
			}
			body = plain
		}
	}
	hd.Set("ETag", `"`+etag+`"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip
// (RFC 9110, section 12.5.3): "gzip" or "x-gzip" with a non-zero q, or "*"
// with a non-zero q when gzip is not listed.
func acceptsGzip(r *http.Request) bool {
	gzipQ, starQ := -1.0, -1.0
	for _, line := range r.Header.Values("Accept-Encoding") {
		for _, part := range strings.Split(line, ",") {
			coding, params, _ := strings.Cut(part, ";")
			q := 1.0
			for _, param := range strings.Split(params, ";") {
				k, v, ok := strings.Cut(param, "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
					f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
					if err != nil || !(f >= 0 && f <= 1) {
						f = 0
					}
					q = f
				}
			}
			switch strings.ToLower(strings.TrimSpace(coding)) {
			case "gzip", "x-gzip":
				gzipQ = max(gzipQ, q)
			case "*":
				starQ = max(starQ, q)
			}
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return starQ > 0
}
