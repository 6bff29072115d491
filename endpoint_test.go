package ferry_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/internal/envelope"
)

// mustPanic runs bind and returns what it panicked with; it fails the test
// unless the panic is a string prefixed "ferry: " that contains every want.
func mustPanic(t *testing.T, bind func(), want ...string) {
	t.Helper()
	defer func() {
		t.Helper()
		v := recover()
		msg, ok := v.(string)
		if !ok || !strings.HasPrefix(msg, "ferry: ") {
			t.Fatalf("recovered %v, want a panic prefixed ferry:", v)
		}
		for _, w := range want {
			if !strings.Contains(msg, w) {
				t.Errorf("panic %q lacks %q", msg, w)
			}
		}
	}()
	bind()
}

// TestOperationKeepsFerrysChain: an Operation callback that sets its own
// Huma middleware adds to Ferry's chain instead of replacing it, over HTTP
// and without HTTP alike.
func TestOperationKeepsFerrysChain(t *testing.T) {
	var mu sync.Mutex
	var steps []string
	step := func(s string) {
		mu.Lock()
		steps = append(steps, s)
		mu.Unlock()
	}
	service := func(next ferry.Handler) ferry.Handler {
		return func(ctx context.Context, req *ferry.Request) error {
			step("service middleware")
			return next(ctx, req)
		}
	}
	svc := ferry.MustNew("ops", "1.0.0", quiet, ferry.WithMiddleware(service))
	ep := ferry.Endpoint[Empty, Empty]{Service: "ops", Name: "custom", Method: http.MethodGet, Path: "/custom",
		Operation: func(op *huma.Operation) {
			op.Middlewares = huma.Middlewares{func(ctx huma.Context, next func(huma.Context)) {
				step("operation middleware")
				next(ctx)
			}}
		}}
	ferry.Handle(svc, ep, func(ctx context.Context, _ *Empty) (*Empty, error) {
		step("handler " + ferry.RequestIDFromContext(ctx))
		return &Empty{}, nil
	})

	want := []string{"service middleware", "operation middleware", "handler op-1"}
	check := func(via string, status int, id string) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if status != http.StatusNoContent || id != "op-1" {
			t.Errorf("%s: status %d, X-Request-Id %q", via, status, id)
		}
		if strings.Join(steps, ", ") != strings.Join(want, ", ") {
			t.Errorf("%s: ran %q, want %q", via, steps, want)
		}
		steps = nil
	}
	rec := do(t, svc.Handler(), "GET", "/custom", "", http.Header{ferry.HeaderRequestID: {"op-1"}})
	check("HTTP", rec.Code, rec.Header().Get(ferry.HeaderRequestID))
	resp := svc.Invoke(context.Background(), "custom", &envelope.Request{Header: http.Header{ferry.HeaderRequestID: {"op-1"}}})
	check("memory", resp.Status, resp.Header.Get(ferry.HeaderRequestID))
}

// TestOperationCannotMoveTheEndpoint: the callback may adjust the
// operation but not the name, method or path that HTTP and NATS route by.
func TestOperationCannotMoveTheEndpoint(t *testing.T) {
	tests := []struct {
		name   string
		adjust func(*huma.Operation)
		want   string
	}{
		{"operation ID", func(op *huma.Operation) { op.OperationID = "other" }, `OperationID "other"`},
		{"method", func(op *huma.Operation) { op.Method = http.MethodPost }, `Method "POST"`},
		{"path", func(op *huma.Operation) { op.Path = "/elsewhere" }, `Path "/elsewhere"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := ferry.MustNew("ops", "1.0.0", quiet)
			ep := ferry.Endpoint[Empty, Empty]{Service: "ops", Name: "custom", Method: http.MethodGet, Path: "/custom", Operation: tt.adjust}
			mustPanic(t, func() {
				ferry.Handle(svc, ep, func(context.Context, *Empty) (*Empty, error) { return &Empty{}, nil })
			}, "ops.custom", tt.want)
			if len(svc.Endpoints()) != 0 {
				t.Errorf("a refused endpoint stays bound: %v", svc.Endpoints())
			}
		})
	}
	// Documentation fields are the callback's to change.
	svc := ferry.MustNew("ops", "1.0.0", quiet)
	ferry.Handle(svc, ferry.Endpoint[Empty, Empty]{Service: "ops", Name: "documented", Method: http.MethodGet, Path: "/documented",
		Operation: func(op *huma.Operation) { op.Summary, op.Deprecated = "Changed", true }},
		func(context.Context, *Empty) (*Empty, error) { return &Empty{}, nil })
	if rec := do(t, svc.Handler(), "GET", "/openapi.json", "", nil); !strings.Contains(rec.Body.String(), `"summary":"Changed"`) {
		t.Errorf("the callback's summary is not documented: %s", rec.Body)
	}
}

// Inputs that only HTTP carries.
type (
	cookieInput struct {
		Session string `cookie:"session"`
	}
	embeddedCookie struct {
		Theme string `cookie:"theme"`
	}
	embeddedCookieInput struct {
		embeddedCookie
		ID int `query:"id"`
	}
	EmbeddedCookie struct {
		Theme string `cookie:"theme"`
	}
	exportedEmbeddedCookieInput struct {
		EmbeddedCookie
	}
	formInput struct {
		Name string `form:"name"`
	}
	rawBodyInput struct {
		RawBody []byte
	}
	multipartInput struct {
		RawBody huma.MultipartFormFiles[struct {
			Title string `form:"title"`
		}]
	}
)

// TestInputsOnlyHTTPCarries: an input NATS cannot carry (cookies, forms,
// the raw body) is refused at Handle unless the endpoint is HTTP-only.
func TestInputsOnlyHTTPCarries(t *testing.T) {
	tests := []struct {
		name string
		bind func(s *ferry.Service, httpOnly bool)
		want []string // in the panic without HTTPOnly
	}{
		{"cookie", func(s *ferry.Service, h bool) {
			ferry.Handle(s, ferry.Endpoint[cookieInput, Empty]{Service: "svc", Name: "e", Method: "GET", Path: "/e", HTTPOnly: h},
				func(context.Context, *cookieInput) (*Empty, error) { return &Empty{}, nil })
		}, []string{"svc.e", `Session (cookie "session")`, "HTTPOnly: true"}},
		{"cookie in an exported embedded struct", func(s *ferry.Service, h bool) {
			ferry.Handle(s, ferry.Endpoint[exportedEmbeddedCookieInput, Empty]{Service: "svc", Name: "e", Method: "GET", Path: "/e", HTTPOnly: h},
				func(context.Context, *exportedEmbeddedCookieInput) (*Empty, error) { return &Empty{}, nil })
		}, []string{`Theme (cookie "theme")`}},
		{"form field", func(s *ferry.Service, h bool) {
			ferry.Handle(s, ferry.Endpoint[formInput, Empty]{Service: "svc", Name: "e", Method: "POST", Path: "/e", HTTPOnly: h},
				func(context.Context, *formInput) (*Empty, error) { return &Empty{}, nil })
		}, []string{`Name (form "name")`, "HTTPOnly: true"}},
		{"raw body", func(s *ferry.Service, h bool) {
			ferry.Handle(s, ferry.Endpoint[rawBodyInput, Empty]{Service: "svc", Name: "e", Method: "POST", Path: "/e", HTTPOnly: h},
				func(context.Context, *rawBodyInput) (*Empty, error) { return &Empty{}, nil })
		}, []string{"RawBody", "HTTPOnly: true"}},
		{"multipart form", func(s *ferry.Service, h bool) {
			ferry.Handle(s, ferry.Endpoint[multipartInput, Empty]{Service: "svc", Name: "e", Method: "POST", Path: "/e", HTTPOnly: h},
				func(context.Context, *multipartInput) (*Empty, error) { return &Empty{}, nil })
		}, []string{"RawBody", "HTTPOnly: true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustPanic(t, func() { tt.bind(ferry.MustNew("svc", "1.0.0", quiet), false) }, tt.want...)
			tt.bind(ferry.MustNew("svc", "1.0.0", quiet), true) // HTTP-only: accepted
		})
	}
	// A cookie in an unexported embedded struct is no parameter at all
	// (Huma binds exported fields only), so there is nothing to refuse.
	ferry.Handle(ferry.MustNew("svc", "1.0.0", quiet), ferry.Endpoint[embeddedCookieInput, Empty]{Service: "svc", Name: "e", Method: "GET", Path: "/e"},
		func(context.Context, *embeddedCookieInput) (*Empty, error) { return &Empty{}, nil })
}

// TestEndpointsNameTheirService: an endpoint declared in place belongs to
// the service it is bound on; an Endpoint value must say which service
// serves it, or callers could not address it.
func TestEndpointsNameTheirService(t *testing.T) {
	ok := func(context.Context, *Empty) (*Empty, error) { return &Empty{}, nil }
	svc := ferry.MustNew("svc", "1.0.0", quiet)
	ferry.Get(svc, "get", "/r", ok)
	ferry.Post(svc, "post", "/r", ok)
	ferry.Put(svc, "put", "/r", ok)
	ferry.Patch(svc, "patch", "/r", ok)
	ferry.Delete(svc, "delete", "/r", ok)
	if got := strings.Join(svc.Endpoints(), ","); got != "delete,get,patch,post,put" {
		t.Errorf("bound %s", got)
	}

	defer func() {
		if v := recover(); v != `ferry: Handle svc.name: the endpoint declares no Service; set Service: "svc" so callers can address it` {
			t.Errorf("recovered %v", v)
		}
	}()
	ferry.Handle(ferry.MustNew("svc", "1.0.0", quiet), ferry.Endpoint[Empty, Empty]{Name: "name", Method: "GET", Path: "/name"}, ok)
}

// TestInputTypeMatchesTheRequest: an input type that the request would
// never fill — JSON fields outside a Body, path parameters that the
// template and the tags disagree on — is refused at Handle, instead of
// answering zero values or 422 to every request.
func TestInputTypeMatchesTheRequest(t *testing.T) {
	type bodyless struct {
		SKU string `json:"sku"`
		Qty int    `json:"qty"`
	}
	type id struct {
		ID string `path:"id"`
	}
	type sku struct {
		SKU string `path:"sku"`
	}
	type skuAndBody struct {
		SKU  string `path:"sku" json:"sku"`
		Note string `json:"-"`
		Body struct {
			Qty int `json:"qty"`
		}
	}
	type paramsWithJSON struct {
		Limit int    `query:"limit" json:"limit"`
		Token string `header:"X-Token" json:"token"`
	}
	type rest struct {
		Rest string `path:"rest"`
	}
	tests := []struct {
		name string
		bind func(*ferry.Service)
		want []string // the panic's pieces; nil: accepted
	}{
		// A plain struct is the body as a whole, for a method with a body.
		{"POST a plain struct", bindInput[bodyless]("POST", "/p"), nil},
		{"PUT a plain struct", bindInput[bodyless]("PUT", "/p"), nil},
		{"PATCH a plain struct", bindInput[bodyless]("PATCH", "/p"), nil},
		{"a plain struct with a path parameter in the template", bindInput[bodyless]("POST", "/p/{sku}"), []string{"{sku}"}},
		{"GET JSON fields without Body", bindInput[bodyless]("GET", "/p"), []string{"SKU", "query"}},
		{"JSON tags beside parameter tags", bindInput[paramsWithJSON]("POST", "/p"), nil},
		{"JSON tags beside a Body", bindInput[skuAndBody]("POST", "/p/{sku}"), nil},
		{"template and tag differ", bindInput[id]("GET", "/q/{sku}"), []string{"svc.e", "/q/{sku}", "{sku}", `ID (path "id")`}},
		{"template parameter unbound", bindInput[Empty]("GET", "/q/{sku}"), []string{"no input field binds parameter {sku}"}},
		{"tag without template parameter", bindInput[sku]("GET", "/q"), []string{`SKU (path "sku")`, "/q"}},
		{"template and tag agree", bindInput[sku]("GET", "/q/{sku}"), nil},
		{"wildcard", bindInput[rest]("GET", "/files/{rest...}"), nil},
		{"exact match marker", bindInput[sku]("GET", "/q/{sku}/{$}"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ferry.MustNew("svc", "1.0.0", quiet)
			if tt.want == nil {
				tt.bind(s)
				return
			}
			mustPanic(t, func() { tt.bind(s) }, tt.want...)
		})
	}
}

// bindInput returns a function that binds an endpoint with input type In
// on a service named svc.
func bindInput[In any](method, path string) func(*ferry.Service) {
	return func(s *ferry.Service) {
		ferry.Handle(s, ferry.Endpoint[In, Empty]{Service: "svc", Name: "e", Method: method, Path: path},
			func(context.Context, *In) (*Empty, error) { return &Empty{}, nil })
	}
}

// TestHumaSetupPanicsNameTheEndpoint: a mistake only Huma detects (here a
// pointer parameter) panics with Ferry's prefix and the endpoint's name,
// and leaves nothing bound.
func TestHumaSetupPanicsNameTheEndpoint(t *testing.T) {
	type pointerParam struct {
		Limit *int `query:"limit"`
	}
	svc := ferry.MustNew("svc", "1.0.0", quiet)
	mustPanic(t, func() { bindInput[pointerParam]("GET", "/p")(svc) }, "ferry: Handle svc.e: ", "pointers are not supported")
	if len(svc.Endpoints()) != 0 {
		t.Errorf("a refused endpoint stays bound: %v", svc.Endpoints())
	}
	bindInput[Empty]("GET", "/p")(svc) // the name is free again
}
