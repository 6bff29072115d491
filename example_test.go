package ferry_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/ferrygo/ferry"
)

// GreetInput is the input of the greet endpoint.
type GreetInput struct {
	Name string `path:"name" maxLength:"20"`
}

// GreetOutput is its output.
type GreetOutput struct {
	Body struct {
		Message string `json:"message"`
	}
}

// Greet is the endpoint's contract: a value another service can import,
// naming the service that serves it.
var Greet = ferry.Endpoint[GreetInput, GreetOutput]{
	Service: "greeter", Name: "greet", Method: http.MethodGet, Path: "/greet/{name}",
}

// A service binds a handler to a contract value; the service's Handler
// serves it with validation and problem details.
func Example() {
	svc := ferry.MustNew("greeter", "1.0.0")
	ferry.Handle(svc, Greet, func(ctx context.Context, in *GreetInput) (*GreetOutput, error) {
		out := &GreetOutput{}
		out.Body.Message = "Hello, " + in.Name + "!"
		return out, nil
	})

	rec := httptest.NewRecorder()
	svc.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/greet/Ferry", nil))
	fmt.Println(rec.Code, strings.TrimSpace(rec.Body.String()))

	rec = httptest.NewRecorder()
	svc.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/greet/"+strings.Repeat("x", 21), nil))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	// Output:
	// 200 {"message":"Hello, Ferry!"}
	// 422 application/problem+json
}

// Handlers return errors as values: an *Error reaches the caller as
// problem details with its status and code; any other error becomes a
// generic 500 whose text stays in the logs.
func ExampleError() {
	svc := ferry.MustNew("stock", "1.0.0", quiet)
	ferry.Get(svc, "reserve", "/reserve/{sku}", func(ctx context.Context, in *struct {
		SKU string `path:"sku"`
	}) (*Empty, error) {
		if in.SKU == "gone" {
			return nil, &ferry.Error{Status: http.StatusConflict, Code: "sold_out", Detail: "sku gone is sold out"}
		}
		return nil, fmt.Errorf("connect to db at 10.0.0.7: refused")
	})

	for _, sku := range []string{"gone", "other"} {
		req := httptest.NewRequest("GET", "/reserve/"+sku, nil)
		req.Header.Set(ferry.HeaderRequestID, "req-1")
		rec := httptest.NewRecorder()
		svc.Handler().ServeHTTP(rec, req)
		fmt.Println(rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	// Output:
	// 409 {"title":"Conflict","status":409,"code":"sold_out","detail":"sku gone is sold out","request_id":"req-1"}
	// 500 {"title":"Internal Server Error","status":500,"code":"internal_server_error","detail":"internal error; the request ID identifies it in the service's logs","request_id":"req-1"}
}

// Middleware sees every call, whatever carried it, as a transport-neutral
// Request; it may refuse one before its input is decoded.
func ExampleMiddleware() {
	requireKey := func(next ferry.Handler) ferry.Handler {
		return func(ctx context.Context, req *ferry.Request) error {
			if req.Header("X-Api-Key") != "secret" {
				return ferry.NewError(http.StatusUnauthorized, "missing or wrong API key")
			}
			return next(ctx, req)
		}
	}
	svc := ferry.MustNew("greeter", "1.0.0", ferry.WithMiddleware(requireKey))
	ferry.Handle(svc, Greet, func(ctx context.Context, in *GreetInput) (*GreetOutput, error) {
		out := &GreetOutput{}
		out.Body.Message = "hi " + in.Name + ", request " + ferry.RequestIDFromContext(ctx)
		return out, nil
	})

	for _, key := range []string{"", "secret"} {
		req := httptest.NewRequest("GET", "/greet/ann", nil)
		req.Header.Set("X-Api-Key", key)
		req.Header.Set(ferry.HeaderRequestID, "r-7")
		rec := httptest.NewRecorder()
		svc.Handler().ServeHTTP(rec, req)
		fmt.Println(rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	// Output:
	// 401 {"title":"Unauthorized","status":401,"code":"unauthorized","detail":"missing or wrong API key","request_id":"r-7"}
	// 200 {"message":"hi ann, request r-7"}
}

// Logger(ctx) is the service's logger with the request's service, ID and
// endpoint attached, so a handler's lines are found with the request's.
func ExampleLogger() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // a stable output
			}
			return a
		},
	}))
	svc := ferry.MustNew("greeter", "1.0.0", ferry.WithLogger(logger))
	ferry.Handle(svc, Greet, func(ctx context.Context, in *GreetInput) (*GreetOutput, error) {
		ferry.Logger(ctx).Info("greeting", "name", in.Name)
		out := &GreetOutput{}
		out.Body.Message = "hi " + in.Name
		return out, nil
	})
	req := httptest.NewRequest("GET", "/greet/ann", nil)
	req.Header.Set(ferry.HeaderRequestID, "r-8")
	svc.Handler().ServeHTTP(httptest.NewRecorder(), req)
	// Output:
	// level=INFO msg=greeting service=greeter request_id=r-8 endpoint=greet name=ann
}

// A Host runs several services in one process, each on its own address
// (or none), with one signal handler and one graceful shutdown.
func ExampleHost() {
	gateway := ferry.MustNew("gateway", "1.0.0", ferry.WithAddr("127.0.0.1:0"), quiet)
	catalog := ferry.MustNew("catalog", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.Get(gateway, "welcome", "/welcome/{name}", func(ctx context.Context, in *GreetInput) (*GreetOutput, error) {
		out := &GreetOutput{}
		out.Body.Message = "welcome, " + in.Name
		return out, nil
	})

	host, _ := ferry.NewHost(quiet)
	_ = host.Add(gateway, catalog)
	if err := host.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	defer host.Shutdown(context.Background())

	resp, err := http.Get("http://" + gateway.Addr().String() + "/welcome/bob")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	fmt.Println(resp.StatusCode, catalog.Addr() == nil)
	// Output:
	// 200 true
}
