package ferry_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/ferrygo/ferry"
)

// ReportOutput is what the report endpoint answers.
type ReportOutput struct {
	Body struct {
		For string `json:"for"`
	}
}

// Report is a contract that requires the scope reports:read; Ping is
// explicitly public.
var (
	Report = ferry.Endpoint[struct{}, ReportOutput]{Service: "reports", Name: "report", Method: http.MethodGet, Path: "/report",
		Auth: ferry.Auth{Scopes: []string{"reports:read"}}}
	Ping = ferry.Endpoint[struct{}, struct{}]{Service: "reports", Name: "ping", Method: http.MethodGet, Path: "/ping",
		Auth: ferry.Auth{Public: true}}
)

// A service that accepts API keys (here given in code; in production from
// FERRY_API_KEYS_FILE, or bearer JWTs from FERRY_JWT_JWKS_URL) checks each
// call against the endpoint's Auth, before decoding its input, and hands
// the verified caller to the handler.
func ExampleAuth() {
	svc := ferry.MustNew("reports", "1.0.0", quiet, ferry.WithAPIKeys(
		ferry.APIKey{Name: "billing", Hash: ferry.HashAPIKey("key-of-billing"), Scopes: []string{"reports:read"}},
		ferry.APIKey{Name: "ops", Hash: ferry.HashAPIKey("key-of-ops")},
	))
	ferry.Handle(svc, Report, func(ctx context.Context, _ *struct{}) (*ReportOutput, error) {
		out := &ReportOutput{}
		out.Body.For = ferry.PrincipalFromContext(ctx).Subject
		return out, nil
	})
	ferry.Handle(svc, Ping, func(context.Context, *struct{}) (*struct{}, error) { return &struct{}{}, nil })

	call := func(path, key string) {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set(ferry.HeaderRequestID, "r-1")
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		rec := httptest.NewRecorder()
		svc.Handler().ServeHTTP(rec, req)
		line := fmt.Sprint(path, " ", rec.Code)
		if b := rec.Body.String(); b != "" {
			line += " " + b
		}
		fmt.Println(line)
		if c := rec.Header().Get("WWW-Authenticate"); c != "" {
			fmt.Println("  WWW-Authenticate:", c)
		}
	}
	call("/ping", "")
	call("/report", "")
	call("/report", "key-of-ops")
	call("/report", "key-of-billing")
	// Output:
	// /ping 204
	// /report 401 {"title":"Unauthorized","status":401,"code":"unauthorized","detail":"this endpoint requires authentication; send Authorization: ApiKey <key>, or the key in X-API-Key","request_id":"r-1"}
	//   WWW-Authenticate: ApiKey realm="reports"
	// /report 403 {"title":"Forbidden","status":403,"code":"insufficient_scope","detail":"this endpoint requires the scopes reports:read; the credentials do not grant them all","request_id":"r-1"}
	//   WWW-Authenticate: ApiKey realm="reports", error="insufficient_scope", scope="reports:read"
	// /report 200 {"for":"billing"}
}
