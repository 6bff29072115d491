package ferry_test

import (
	"context"
	"crypto"
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ferrygo/ferry"
)

// openAPIDoc is the part of the document the tests read.
type openAPIDoc struct {
	Components struct {
		SecuritySchemes map[string]struct {
			Type, Scheme, BearerFormat, In, Name string
		} `json:"securitySchemes"`
	}
	Paths map[string]map[string]struct {
		OperationID string                 `json:"operationId"`
		Security    *[]map[string][]string `json:"security"`
		Responses   map[string]struct {
			Content map[string]struct {
				Schema struct {
					Ref string `json:"$ref"`
				}
			}
		}
	}
}

func readOpenAPI(t *testing.T, svc *ferry.Service) openAPIDoc {
	t.Helper()
	rec := do(t, svc.Handler(), "GET", "/openapi.json", "", nil)
	var doc openAPIDoc
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("%v: %s", err, rec.Body)
	}
	return doc
}

// ItemByID has a path parameter.
type ItemByID struct {
	ID int `path:"id"`
}

func TestOpenAPIErrorsAndSecurity(t *testing.T) {
	k := rsaKeys()
	svc := ferry.MustNew("orders", "1.0.0", quiet,
		ferry.WithJWT(ferry.JWTConfig{Keys: []crypto.PublicKey{&k[0].PublicKey}}),
		ferry.WithAPIKeys(ferry.APIKey{Name: "ops", Hash: ferry.HashAPIKey("k")}))
	ferry.Handle(svc, whoamiEP, func(ctx context.Context, _ *Empty) (*PrincipalSeen, error) { return whoami(ctx), nil })
	ferry.Handle(svc, createOrderEP, func(ctx context.Context, _ *NewOrderInput) (*PrincipalSeen, error) { return whoami(ctx), nil })
	ferry.Handle(svc, statusEP, func(ctx context.Context, _ *Empty) (*PrincipalSeen, error) { return whoami(ctx), nil })
	ferry.Handle(svc, ferry.Endpoint[ItemByID, Empty]{Service: "orders", Name: "get-item", Method: "GET", Path: "/items/{id}", Auth: ferry.Auth{Public: true}},
		func(context.Context, *ItemByID) (*Empty, error) { return &Empty{}, nil })
	doc := readOpenAPI(t, svc)

	bearer, apiKey := doc.Components.SecuritySchemes["bearerAuth"], doc.Components.SecuritySchemes["apiKeyAuth"]
	if bearer.Type != "http" || bearer.Scheme != "bearer" || bearer.BearerFormat != "JWT" {
		t.Errorf("bearerAuth = %+v", bearer)
	}
	if apiKey.Type != "apiKey" || apiKey.In != "header" || apiKey.Name != "X-API-Key" {
		t.Errorf("apiKeyAuth = %+v", apiKey)
	}
	tests := []struct {
		path, method string
		security     string // the requirements, as "scheme:scopes|…"; "-" for none given
		codes        []string
	}{
		{"/whoami", "get", "bearerAuth:|apiKeyAuth:", []string{"401", "431", "500", "502", "503", "504", "default"}},
		{"/orders", "post", "bearerAuth:orders:write|apiKeyAuth:orders:write",
			[]string{"400", "401", "403", "408", "409", "413", "415", "422", "431", "500", "502", "503", "504", "default"}},
		{"/status", "get", "", []string{"431", "500", "502", "503", "504", "default"}},
		{"/items/{id}", "get", "", []string{"404", "422", "431", "500", "502", "503", "504", "default"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			op := doc.Paths[tt.path][tt.method]
			got := "-"
			if op.Security != nil {
				var reqs []string
				for _, r := range *op.Security {
					for name, scopes := range r {
						reqs = append(reqs, name+":"+strings.Join(scopes, ","))
					}
				}
				got = strings.Join(reqs, "|")
			}
			if got != tt.security {
				t.Errorf("security %q, want %q", got, tt.security)
			}
			var codes []string
			for code, r := range op.Responses {
				if strings.HasPrefix(code, "2") {
					continue
				}
				codes = append(codes, code)
				if ref := r.Content["application/problem+json"].Schema.Ref; ref != "#/components/schemas/ferry.Error" {
					t.Errorf("response %s: schema %q, want the problem schema", code, ref)
				}
			}
			sort.Strings(codes)
			if !slices.Equal(codes, tt.codes) {
				t.Errorf("error responses %v, want %v", codes, tt.codes)
			}
		})
	}
}

func TestOpenAPISecurityFollowsTheHost(t *testing.T) {
	// A service without a configuration documents no security until its
	// host gives it one that verifies credentials.
	svc := ferry.MustNew("orders", "1.0.0", quiet, ferry.WithAddr("127.0.0.1:0"))
	ferry.Handle(svc, whoamiEP, func(ctx context.Context, _ *Empty) (*PrincipalSeen, error) { return whoami(ctx), nil })
	ferry.Handle(svc, statusEP, func(ctx context.Context, _ *Empty) (*PrincipalSeen, error) { return whoami(ctx), nil })
	// (Read from the API, not over HTTP: Huma serves the document it first
	// rendered.)
	before := svc.API().OpenAPI()
	whoamiOp := before.Paths["/whoami"].Get
	if len(before.Components.SecuritySchemes) != 0 || whoamiOp.Security != nil {
		t.Fatalf("security documented without authentication: %+v", before.Components.SecuritySchemes)
	}
	if _, ok := whoamiOp.Responses["401"]; ok {
		t.Error("401 documented without authentication")
	}

	cfg := ferry.Config{APIKeysFile: writeKeys(t, "ops "+ferry.HashAPIKey("k")+"\n")}
	h, err := ferry.NewHost(quiet, ferry.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Add(svc); err != nil {
		t.Fatal(err)
	}
	doc := readOpenAPI(t, svc)
	if _, ok := doc.Components.SecuritySchemes["apiKeyAuth"]; !ok || len(doc.Components.SecuritySchemes) != 1 {
		t.Errorf("schemes %+v, want apiKeyAuth", doc.Components.SecuritySchemes)
	}
	if s := doc.Paths["/whoami"]["get"].Security; s == nil || len(*s) != 1 {
		t.Errorf("whoami security %v", s)
	}
	if s := doc.Paths["/status"]["get"].Security; s == nil || len(*s) != 0 {
		t.Errorf("status security %v, want [] (explicitly public)", s)
	}
	if _, ok := doc.Paths["/whoami"]["get"].Responses["401"]; !ok {
		t.Error("401 not documented")
	}
	// And the service enforces what the document says.
	if rec := do(t, svc.Handler(), "GET", "/whoami", "", nil); rec.Code != http.StatusUnauthorized {
		t.Errorf("whoami without a key: %d", rec.Code)
	}
	if rec := do(t, svc.Handler(), "GET", "/whoami", "", http.Header{"X-Api-Key": {"k"}}); rec.Code != http.StatusOK {
		t.Errorf("whoami with the key: %d %s", rec.Code, rec.Body)
	}
}
