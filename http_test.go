package ferry_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/internal/envelope"
	"github.com/ferrygo/ferry/internal/fixture/catalog"
	"github.com/ferrygo/ferry/internal/fixture/orders"
)

func TestHTTPProblems(t *testing.T) {
	svc, logs := newTestService(t)
	h := svc.Handler()
	tests := []struct {
		name      string
		method    string
		target    string
		body      string
		status    int
		code      string
		location  string // of the first field error, if any
		header    [2]string
		notInBody string
	}{
		{name: "ok", method: "POST", target: "/echo/7?limit=3", body: `{"name":"a"}`, status: 200},
		{name: "path not an integer", method: "POST", target: "/echo/abc", body: `{"name":"a"}`, status: 422, code: "unprocessable_entity", location: "path.id"},
		{name: "path below minimum", method: "POST", target: "/echo/0", body: `{"name":"a"}`, status: 422, location: "path.id"},
		{name: "query above maximum", method: "POST", target: "/echo/1?limit=101", body: `{"name":"a"}`, status: 422, location: "query.limit"},
		{name: "body field too short", method: "POST", target: "/echo/1", body: `{"name":""}`, status: 422, location: "body.name"},
		{name: "body unknown field ignored", method: "POST", target: "/echo/1", body: `{"name":"a","x":1}`, status: 200},
		{name: "body malformed", method: "POST", target: "/echo/1", body: `{"name":`, status: 400},
		{name: "unknown route", method: "GET", target: "/nowhere", status: 404, code: "not_found"},
		{name: "wrong method", method: "DELETE", target: "/echo/1", status: 405, code: "method_not_allowed", header: [2]string{"Allow", "POST"}},
		{name: "plain error hidden", method: "GET", target: "/fail/plain", status: 500, code: "internal_server_error", notInBody: "hunter2"},
		{name: "typed error", method: "GET", target: "/fail/typed", status: 409, code: "sold_out", header: [2]string{"Retry-After", "60"}},
		{name: "panic hidden", method: "GET", target: "/panic", status: 500, code: "internal_server_error", notInBody: "secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(t, h, tt.method, tt.target, tt.body, http.Header{"X-Token": {"tok"}})
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.header[0] != "" && rec.Header().Get(tt.header[0]) != tt.header[1] {
				t.Errorf("%s = %q, want %q", tt.header[0], rec.Header().Get(tt.header[0]), tt.header[1])
			}
			id := rec.Header().Get(ferry.HeaderRequestID)
			if id == "" {
				t.Error("no X-Request-Id in the response")
			}
			if tt.status < 400 {
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q, want application/problem+json", ct)
			}
			p := problem(t, rec.Body.Bytes())
			if int(p["status"].(float64)) != tt.status || p["title"] != http.StatusText(tt.status) {
				t.Errorf("status/title = %v/%v", p["status"], p["title"])
			}
			if tt.code != "" && p["code"] != tt.code {
				t.Errorf("code %v, want %s", p["code"], tt.code)
			}
			if p["request_id"] != id {
				t.Errorf("request_id %v, want the header's %q", p["request_id"], id)
			}
			if tt.location != "" {
				errs, _ := p["errors"].([]any)
				if len(errs) == 0 || errs[0].(map[string]any)["location"] != tt.location {
					t.Errorf("errors %v, want first at %s", p["errors"], tt.location)
				}
			}
			if tt.notInBody != "" && strings.Contains(rec.Body.String(), tt.notInBody) {
				t.Errorf("body leaks %q: %s", tt.notInBody, rec.Body)
			}
		})
	}
	// What the body hides, the log keeps, with the request ID.
	for _, want := range []string{"hunter2", "secret panic value", "stack="} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q", want)
		}
	}
}

func TestRequestIDPropagated(t *testing.T) {
	svc, _ := newTestService(t)
	tests := []struct{ in, wantSame bool }{{true, true}}
	_ = tests
	rec := do(t, svc.Handler(), "GET", "/fail/typed", "", http.Header{ferry.HeaderRequestID: {"req-123"}})
	if got := rec.Header().Get(ferry.HeaderRequestID); got != "req-123" {
		t.Errorf("X-Request-Id = %q, want the caller's", got)
	}
	if p := problem(t, rec.Body.Bytes()); p["request_id"] != "req-123" {
		t.Errorf("request_id = %v", p["request_id"])
	}
	rec = do(t, svc.Handler(), "GET", "/fail/typed", "", http.Header{ferry.HeaderRequestID: {"bad id with spaces"}})
	if got := rec.Header().Get(ferry.HeaderRequestID); got == "" || strings.Contains(got, " ") {
		t.Errorf("invalid incoming ID kept: %q", got)
	}
	// The shared *Error value is never modified.
	if errSoldOut.RequestID != "" || errSoldOut.Title != "" {
		t.Errorf("shared error modified: %+v", errSoldOut)
	}
}

func TestMiddlewareSeesEveryCall(t *testing.T) {
	type seen struct {
		name, transport string
		status          int
	}
	var calls []seen
	record := func(next ferry.Handler) ferry.Handler {
		return func(ctx context.Context, req *ferry.Request) error {
			err := next(ctx, req)
			status := 200
			if fe, ok := err.(*ferry.Error); ok {
				status = fe.Status
			}
			if ferry.RequestFromContext(ctx) != req {
				t.Error("request not in context")
			}
			calls = append(calls, seen{req.Name, req.Transport, status})
			return err
		}
	}
	refuse := func(next ferry.Handler) ferry.Handler {
		return func(ctx context.Context, req *ferry.Request) error {
			if req.Header("X-Token") == "deny" {
				return ferry.NewError(http.StatusUnauthorized, "token refused")
			}
			return next(ctx, req)
		}
	}
	svc, _ := newTestService(t, ferry.WithMiddleware(record, refuse))
	h := svc.Handler()
	do(t, h, "POST", "/echo/1", `{"name":"a"}`, nil)
	do(t, h, "POST", "/echo/x", `{"name":"a"}`, nil)
	do(t, h, "GET", "/panic", "", nil)
	rec := do(t, h, "POST", "/echo/1", `{"name":"a"}`, http.Header{"X-Token": {"deny"}})
	if rec.Code != 401 || problem(t, rec.Body.Bytes())["detail"] != "token refused" {
		t.Errorf("refusal answered %d %s", rec.Code, rec.Body)
	}
	want := []seen{{"echo", "http", 200}, {"echo", "http", 422}, {"panic", "http", 500}, {"echo", "http", 401}}
	if len(calls) != len(want) {
		t.Fatalf("middleware saw %v, want %v", calls, want)
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Errorf("call %d: %+v, want %+v", i, calls[i], want[i])
		}
	}
}

func TestSchemaNamesPackageQualified(t *testing.T) {
	svc := ferry.MustNew("shop", "1.0.0")
	type catalogOut struct{ Body catalog.Item }
	type ordersIn struct{ Body orders.Item }
	ferry.Get(svc, "get-product", "/products", func(context.Context, *Empty) (*catalogOut, error) { return &catalogOut{}, nil })
	ferry.Post(svc, "add-line", "/lines", func(context.Context, *ordersIn) (*Empty, error) { return &Empty{}, nil })
	rec := do(t, svc.Handler(), "GET", "/openapi.json", "", nil)
	var doc struct {
		Components struct{ Schemas map[string]json.RawMessage }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"catalog.Item", "orders.Item", "ferry.Error"} {
		if _, ok := doc.Components.Schemas[name]; !ok {
			t.Errorf("schema %s missing; have %v", name, keys(doc.Components.Schemas))
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name, version string
		ok            bool
	}{
		{"items", "1.0.0", true},
		{"items.v1", "1.0.0", false},
		{"", "1.0.0", false},
		{"items", "1.0", false},
		{"items", "v1.0.0", false},
	}
	for _, tt := range tests {
		if _, err := ferry.New(tt.name, tt.version); (err == nil) != tt.ok {
			t.Errorf("New(%q, %q) = %v, want ok=%v", tt.name, tt.version, err, tt.ok)
		}
	}
}

func TestHandleSetupMistakesPanic(t *testing.T) {
	h := func(context.Context, *Empty) (*Empty, error) { return &Empty{}, nil }
	tests := []struct {
		name string
		bind func(*ferry.Service)
	}{
		{"invalid name", func(s *ferry.Service) { ferry.Get(s, "get item", "/x", h) }},
		{"duplicate name", func(s *ferry.Service) { ferry.Get(s, "a", "/x", h); ferry.Get(s, "a", "/y", h) }},
		{"relative path", func(s *ferry.Service) { ferry.Get(s, "a", "x", h) }},
		{"nil handler", func(s *ferry.Service) { ferry.Get[Empty, Empty](s, "a", "/x", nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				v := recover()
				if v == nil || !strings.HasPrefix(v.(string), "ferry: ") {
					t.Errorf("recovered %v, want a panic prefixed ferry:", v)
				}
			}()
			tt.bind(ferry.MustNew("svc", "1.0.0"))
		})
	}
}

// TestUnsupportedMediaType: a body sent with a content type the endpoint
// does not read is answered 415 with a detail that says what to send, over
// HTTP and in memory alike.
func TestUnsupportedMediaType(t *testing.T) {
	svc, _ := newTestService(t)
	for _, ct := range []string{"application/x-www-form-urlencoded", "text/plain"} {
		t.Run(ct, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/echo/1", strings.NewReader(`{"name":"a"}`))
			req.Header.Set("Content-Type", ct)
			req.Header.Set(ferry.HeaderRequestID, "ct-1")
			rec := httptest.NewRecorder()
			svc.Handler().ServeHTTP(rec, req)
			resp := svc.Invoke(context.Background(), "echo", &envelope.Request{Params: map[string]string{"id": "1"},
				Header: http.Header{"Content-Type": {ct}, ferry.HeaderRequestID: {"ct-1"}}, Body: []byte(`{"name":"a"}`)})
			if rec.Code != http.StatusUnsupportedMediaType || resp.Status != http.StatusUnsupportedMediaType {
				t.Fatalf("HTTP %d, memory %d: %s", rec.Code, resp.Status, rec.Body)
			}
			if rec.Body.String() != resp.Body.String() {
				t.Errorf("bodies differ\nHTTP:   %s\nmemory: %s", rec.Body, resp.Body.String())
			}
			p := problem(t, rec.Body.Bytes())
			if p["detail"] != "send Content-Type: application/json" {
				t.Errorf("detail %q", p["detail"])
			}
			if errs, _ := p["errors"].([]any); len(errs) != 1 || !strings.Contains(errs[0].(map[string]any)["message"].(string), ct) {
				t.Errorf("errors %v, want the content type received", p["errors"])
			}
		})
	}
}
