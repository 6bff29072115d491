package ferry_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
	"github.com/ferrygo/ferry/internal/envelope"
)

// rsaKeys are made once: RSA generation is slow under -race.
var rsaKeys = sync.OnceValue(func() [3]*rsa.PrivateKey {
	var out [3]*rsa.PrivateKey
	for i := range out {
		out[i], _ = rsa.GenerateKey(rand.Reader, 2048)
	}
	return out
})

const (
	testIssuer   = "https://id.test"
	testAudience = "orders"
	reportingKey = "rk_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0" // the API key of the reporting job
)

// token signs claims for the test issuer and audience with key, kid and
// method, after changes (a nil value deletes the claim).
func signToken(t testing.TB, method jwt.SigningMethod, key any, kid string, changes map[string]any) string {
	t.Helper()
	now := time.Now()
	c := jwt.MapClaims{"sub": "alice", "iss": testIssuer, "aud": testAudience, "iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(), "scope": "orders:read"}
	for k, v := range changes {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jwks serves a JWK Set the test can replace, counting fetches.
type jwks struct {
	*httptest.Server
	mu      sync.Mutex
	body    []byte
	fetches atomic.Int32
}

func serveJWKS(t testing.TB, keys map[string]crypto.PublicKey) *jwks {
	t.Helper()
	j := &jwks{}
	j.set(t, keys)
	j.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		j.fetches.Add(1)
		j.mu.Lock()
		defer j.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(j.body)
	}))
	t.Cleanup(j.Close)
	return j
}

func (j *jwks) set(t testing.TB, keys map[string]crypto.PublicKey) {
	t.Helper()
	store := jwkset.NewMemoryStorage()
	for kid, k := range keys {
		jwk, err := jwkset.NewJWKFromKey(k, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, USE: jwkset.UseSig}})
		if err != nil {
			t.Fatal(err)
		}
		_ = store.KeyWrite(context.Background(), jwk)
	}
	raw, err := store.JSONPublic(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	j.mu.Lock()
	j.body = raw
	j.mu.Unlock()
}

// PrincipalSeen is what the test endpoints answer: the principal they see.
type PrincipalSeen struct {
	Body struct {
		Subject string   `json:"subject"`
		Scheme  string   `json:"scheme"`
		Scopes  []string `json:"scopes"`
		Issuer  string   `json:"issuer,omitempty"`
	}
}

// NewOrderInput is a body, so the scoped endpoint is one a browser posts to.
type NewOrderInput struct {
	Body struct {
		Item string `json:"item" minLength:"1"`
	}
}

func whoami(ctx context.Context) *PrincipalSeen {
	out := &PrincipalSeen{}
	if p := ferry.PrincipalFromContext(ctx); p != nil {
		out.Body.Subject, out.Body.Scheme, out.Body.Scopes = p.Subject, p.Scheme, p.Scopes
		out.Body.Issuer, _ = p.Claims["iss"].(string)
	} else {
		out.Body.Subject = "anonymous"
	}
	return out
}

// Contracts of the secured service.
var (
	whoamiEP      = ferry.Endpoint[Empty, PrincipalSeen]{Service: "orders", Name: "whoami", Method: http.MethodGet, Path: "/whoami"}
	createOrderEP = ferry.Endpoint[NewOrderInput, PrincipalSeen]{Service: "orders", Name: "create-order", Method: http.MethodPost, Path: "/orders",
		Auth: ferry.Auth{Scopes: []string{"orders:write"}}, Errors: []int{http.StatusConflict}}
	statusEP = ferry.Endpoint[Empty, PrincipalSeen]{Service: "orders", Name: "status", Method: http.MethodGet, Path: "/status",
		Auth: ferry.Auth{Public: true}}
)

// securedService is "orders": bearer JWTs from a JWKS URL and API keys
// from a file; whoami needs any credentials, create-order the scope
// orders:write, status none.
func securedService(t *testing.T, jwksURL string, logs *syncBuffer, opts ...ferry.Option) *ferry.Service {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "api-keys")
	content := "# the reporting job\nreporting " + ferry.HashAPIKey(reportingKey) + " orders:read\n"
	if err := os.WriteFile(keyFile, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := ferrytest.Config(t)
	cfg.JWTJWKSURL, cfg.JWTIssuer, cfg.JWTAudience, cfg.APIKeysFile = jwksURL, testIssuer, testAudience, keyFile
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc := ferry.MustNew("orders", "1.0.0", append([]ferry.Option{ferry.WithConfig(cfg), ferry.WithNATS(), ferry.WithLogger(logger)}, opts...)...)
	ferry.Handle(svc, whoamiEP, func(ctx context.Context, _ *Empty) (*PrincipalSeen, error) { return whoami(ctx), nil })
	ferry.Handle(svc, createOrderEP, func(ctx context.Context, _ *NewOrderInput) (*PrincipalSeen, error) { return whoami(ctx), nil })
	ferry.Handle(svc, statusEP, func(ctx context.Context, _ *Empty) (*PrincipalSeen, error) { return whoami(ctx), nil })
	return svc
}

// authCase is one call of the secured service, made over HTTP and NATS.
type authCase struct {
	name     string
	endpoint string
	header   http.Header
	status   int
	code     string // the problem's code
	detail   string // in the problem's detail
	subject  string // the principal the handler saw
	secret   string // a credential that must appear in no body and no log
}

func TestAuthOverTransports(t *testing.T) {
	k := rsaKeys()
	srv := serveJWKS(t, map[string]crypto.PublicKey{"k1": &k[0].PublicKey})
	logs := &syncBuffer{}
	svc := securedService(t, srv.URL, logs)
	h := ferrytest.Start(t, svc)
	base, nc := ferrytest.URL(t, svc), h.NATS()

	valid := signToken(t, jwt.SigningMethodRS256, k[0], "k1", nil)
	writer := signToken(t, jwt.SigningMethodRS256, k[0], "k1", map[string]any{"scope": "orders:read orders:write", "sub": "bob"})
	forged := signToken(t, jwt.SigningMethodRS256, k[1], "k1", nil)
	expired := signToken(t, jwt.SigningMethodRS256, k[0], "k1", map[string]any{"exp": time.Now().Add(-time.Hour).Unix()})
	otherIssuer := signToken(t, jwt.SigningMethodRS256, k[0], "k1", map[string]any{"iss": "https://evil.test"})
	otherAudience := signToken(t, jwt.SigningMethodRS256, k[0], "k1", map[string]any{"aud": "billing"})
	none := signToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "k1", nil)
	der, _ := x509.MarshalPKIXPublicKey(&k[0].PublicKey)
	hmacWithPublic := signToken(t, jwt.SigningMethodHS256, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), "k1", nil)
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

	cases := []authCase{
		{name: "missing", endpoint: "whoami", status: 401, code: "unauthorized", detail: "requires authentication"},
		{name: "malformed header", endpoint: "whoami", header: http.Header{"Authorization": {"Bearer"}}, status: 401, code: "invalid_credentials", detail: "malformed"},
		{name: "other scheme", endpoint: "whoami", header: http.Header{"Authorization": {"Basic YWxpY2U6aHVudGVyMg=="}}, status: 401, code: "invalid_credentials", detail: "scheme is not accepted", secret: "YWxpY2U6aHVudGVyMg=="},
		{name: "not a JWT", endpoint: "whoami", header: bearer("not-a-jwt"), status: 401, code: "invalid_token", detail: "malformed", secret: "not-a-jwt"},
		{name: "invalid signature", endpoint: "whoami", header: bearer(forged), status: 401, code: "invalid_token", detail: "signature is not valid", secret: forged},
		{name: "expired", endpoint: "whoami", header: bearer(expired), status: 401, code: "token_expired", detail: "expired", secret: expired},
		{name: "wrong issuer", endpoint: "whoami", header: bearer(otherIssuer), status: 401, code: "invalid_token", detail: "issuer", secret: otherIssuer},
		{name: "wrong audience", endpoint: "whoami", header: bearer(otherAudience), status: 401, code: "invalid_token", detail: "audience", secret: otherAudience},
		{name: "alg none", endpoint: "whoami", header: bearer(none), status: 401, code: "invalid_token", detail: "algorithm", secret: none},
		{name: "HS256 with the public key", endpoint: "whoami", header: bearer(hmacWithPublic), status: 401, code: "invalid_token", detail: "algorithm", secret: hmacWithPublic},
		{name: "valid token", endpoint: "whoami", header: bearer(valid), status: 200, subject: "alice", secret: valid},
		{name: "wrong scope", endpoint: "create-order", header: bearer(valid), status: 403, code: "insufficient_scope", detail: "orders:write", secret: valid},
		{name: "right scope", endpoint: "create-order", header: bearer(writer), status: 200, subject: "bob", secret: writer},
		{name: "API key", endpoint: "whoami", header: http.Header{"X-Api-Key": {reportingKey}}, status: 200, subject: "reporting", secret: reportingKey},
		{name: "API key as Authorization", endpoint: "whoami", header: http.Header{"Authorization": {"ApiKey " + reportingKey}}, status: 200, subject: "reporting", secret: reportingKey},
		{name: "invalid API key", endpoint: "whoami", header: http.Header{"X-Api-Key": {"rk_live_guess"}}, status: 401, code: "invalid_api_key", detail: "not valid", secret: "rk_live_guess"},
		{name: "API key without the scope", endpoint: "create-order", header: http.Header{"X-Api-Key": {reportingKey}}, status: 403, code: "insufficient_scope", secret: reportingKey},
		{name: "public, anonymous", endpoint: "status", status: 200, subject: "anonymous"},
		{name: "public with a token", endpoint: "status", header: bearer(valid), status: 200, subject: "alice", secret: valid},
		{name: "public with a bad token", endpoint: "status", header: bearer(expired), status: 200, subject: "anonymous", secret: expired},
	}
	paths := map[string]struct{ method, path, body string }{
		"whoami": {"GET", "/whoami", ""}, "create-order": {"POST", "/orders", `{"item":"tea"}`}, "status": {"GET", "/status", ""},
	}
	for _, tc := range cases {
		for _, transport := range []string{"http", "nats"} {
			t.Run(tc.name+"/"+transport, func(t *testing.T) {
				ep := paths[tc.endpoint]
				var status int
				var header http.Header
				var body []byte
				if transport == "http" {
					h := tc.header.Clone()
					if h == nil {
						h = http.Header{}
					}
					if ep.body != "" {
						h.Set("Content-Type", "application/json")
					}
					var b string
					status, header, b = callHTTP(t, base, ep.method, ep.path, ep.body, h)
					body = []byte(b)
				} else {
					resp := callNATS(t, nc, "orders", tc.endpoint, &envelope.Request{Header: tc.header.Clone(), Body: []byte(ep.body)})
					status, header, body = resp.Status, resp.Header, resp.Body.Bytes()
				}
				if status != tc.status {
					t.Fatalf("status %d, want %d: %s", status, tc.status, body)
				}
				if tc.secret != "" && strings.Contains(string(body), tc.secret) {
					t.Errorf("the body repeats the credential: %s", body)
				}
				if tc.status == 200 {
					var out struct{ Subject string }
					_ = json.Unmarshal(body, &out)
					if out.Subject != tc.subject {
						t.Errorf("the handler saw %q, want %q", out.Subject, tc.subject)
					}
					return
				}
				p := problem(t, body)
				if p["code"] != tc.code || !strings.Contains(p["detail"].(string), tc.detail) || p["request_id"] == "" {
					t.Errorf("problem %v, want code %q and a detail with %q", p, tc.code, tc.detail)
				}
				if ct := header.Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("Content-Type %q", ct)
				}
				challenge := strings.Join(header.Values("Www-Authenticate"), ", ")
				want := `Bearer realm="orders"`
				if tc.status == 403 && strings.HasPrefix(tc.header.Get("X-Api-Key"), "rk_") {
					want = `ApiKey realm="orders", error="insufficient_scope", scope="orders:write"`
				} else if tc.status == 403 {
					want = `Bearer realm="orders", error="insufficient_scope", scope="orders:write"`
				}
				if !strings.Contains(challenge, want) {
					t.Errorf("WWW-Authenticate %q, want it to contain %q", challenge, want)
				}
				switch tc.code {
				case "token_expired", "invalid_token":
					if !strings.Contains(challenge, `Bearer realm="orders", error="invalid_token", error_description="`+p["detail"].(string)+`"`) {
						t.Errorf("WWW-Authenticate %q lacks the error", challenge)
					}
				case "invalid_api_key":
					if !strings.Contains(challenge, `ApiKey realm="orders", error="invalid_token"`) || strings.Contains(challenge, `Bearer realm="orders", error`) {
						t.Errorf("WWW-Authenticate %q: the error belongs to the ApiKey challenge", challenge)
					}
				case "unauthorized", "invalid_credentials":
					if strings.Contains(challenge, "error=") {
						t.Errorf("WWW-Authenticate %q: no error for a call without credentials", challenge)
					}
				}
			})
		}
	}

	// The typed client gets the callee's refusal as an *Error.
	_, err := whoamiEP.Call(context.Background(), h.Client, &Empty{})
	var fe *ferry.Error
	if !errors.As(err, &fe) || fe.Status != http.StatusUnauthorized || fe.Code != "unauthorized" {
		t.Errorf("Call without credentials = %v, want a 401 *ferry.Error", err)
	}

	// Refusals were logged (at debug), and no credential was.
	out := logs.String()
	if !strings.Contains(out, "ferry: call refused") || !strings.Contains(out, "reason=") {
		t.Errorf("refusals not logged:\n%s", out)
	}
	for _, tc := range cases {
		if tc.secret != "" && strings.Contains(out, tc.secret) {
			t.Errorf("case %q: the log contains the credential", tc.name)
		}
	}
	if strings.Contains(out, "Bearer ey") {
		t.Error("the log contains a bearer header")
	}
}

func TestAuthJWKSRotation(t *testing.T) {
	k := rsaKeys()
	srv := serveJWKS(t, map[string]crypto.PublicKey{"k1": &k[0].PublicKey})
	svc := securedService(t, srv.URL, &syncBuffer{})
	ferrytest.Start(t, svc)
	base := ferrytest.URL(t, svc)
	call := func(tok string) int {
		status, _, _ := callHTTP(t, base, "GET", "/whoami", "", http.Header{"Authorization": {"Bearer " + tok}})
		return status
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches at start, want 1", n)
	}
	if s := call(signToken(t, jwt.SigningMethodRS256, k[0], "k1", nil)); s != 200 {
		t.Fatalf("token of k1: %d", s)
	}
	// The provider rotates to k2: the first token signed by it makes the
	// service fetch the set again.
	srv.set(t, map[string]crypto.PublicKey{"k2": &k[1].PublicKey})
	if s := call(signToken(t, jwt.SigningMethodRS256, k[1], "k2", nil)); s != 200 {
		t.Fatalf("token of the new key k2: %d", s)
	}
	if s := call(signToken(t, jwt.SigningMethodRS256, k[0], "k1", nil)); s != 401 {
		t.Errorf("token of the retired key k1: %d, want 401", s)
	}
	// Unknown kids do not make it fetch again at once.
	for i := range 3 {
		_ = call(signToken(t, jwt.SigningMethodRS256, k[2], "made-up-"+string(rune('a'+i)), nil))
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Errorf("%d fetches, want 2: unknown kids are rate-limited", n)
	}
}

func TestAuthInCode(t *testing.T) {
	k := rsaKeys()
	// Keys and API keys given in code, on a service served without a host.
	svc := ferry.MustNew("orders", "1.0.0", quiet,
		ferry.WithJWT(ferry.JWTConfig{Keys: []crypto.PublicKey{&k[0].PublicKey}, Issuer: testIssuer, Audience: []string{testAudience}}),
		ferry.WithAPIKeys(ferry.APIKey{Name: "ops", Hash: ferry.HashAPIKey("ops-key"), Scopes: []string{"orders:write"}}))
	ferry.Handle(svc, whoamiEP, func(ctx context.Context, _ *Empty) (*PrincipalSeen, error) { return whoami(ctx), nil })
	ferry.Handle(svc, createOrderEP, func(ctx context.Context, _ *NewOrderInput) (*PrincipalSeen, error) { return whoami(ctx), nil })
	h := svc.Handler()
	tests := []struct {
		name   string
		target string
		header http.Header
		status int
	}{
		{"token", "/whoami", http.Header{"Authorization": {"Bearer " + signToken(t, jwt.SigningMethodPS256, k[0], "", nil)}}, 200},
		{"token of another key", "/whoami", http.Header{"Authorization": {"Bearer " + signToken(t, jwt.SigningMethodRS256, k[1], "", nil)}}, 401},
		{"API key", "/whoami", http.Header{"X-Api-Key": {"ops-key"}}, 200},
		{"API key with the scope", "/orders", http.Header{"X-Api-Key": {"ops-key"}}, 200},
		{"no credentials", "/whoami", nil, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, body := "GET", ""
			if tt.target == "/orders" {
				method, body = "POST", `{"item":"tea"}`
			}
			if rec := do(t, h, method, tt.target, body, tt.header); rec.Code != tt.status {
				t.Errorf("%d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
		})
	}

	for _, bad := range []ferry.Option{
		ferry.WithJWT(ferry.JWTConfig{}),
		ferry.WithJWT(ferry.JWTConfig{JWKSURL: "file:///etc/keys"}),
		ferry.WithAPIKeys(ferry.APIKey{Name: "ops", Hash: "ops-key"}),
		ferry.WithAPIKeys(ferry.APIKey{Name: "", Hash: ferry.HashAPIKey("x")}),
		ferry.WithConfig(ferry.Config{CORSOrigins: "app.example.com"}),
		ferry.WithConfig(ferry.Config{JWTJWKSURL: "not a url"}),
		ferry.WithConfig(ferry.Config{JWTLeeway: time.Hour}),
	} {
		if _, err := ferry.New("bad", "1.0.0", bad); err == nil {
			t.Error("a bad authentication option was accepted")
		} else if strings.Contains(err.Error(), "ops-key") {
			t.Errorf("the error repeats the key: %v", err)
		}
	}
}

func TestAuthScopesWithoutVerifier(t *testing.T) {
	// The service verifies nothing: the default is public, but an endpoint
	// that needs a scope refuses every call rather than open up.
	svc := ferry.MustNew("orders", "1.0.0", quiet)
	ferry.Handle(svc, whoamiEP, func(ctx context.Context, _ *Empty) (*PrincipalSeen, error) { return whoami(ctx), nil })
	ferry.Handle(svc, createOrderEP, func(ctx context.Context, _ *NewOrderInput) (*PrincipalSeen, error) { return whoami(ctx), nil })
	if rec := do(t, svc.Handler(), "GET", "/whoami", "", nil); rec.Code != 200 {
		t.Errorf("default endpoint: %d", rec.Code)
	}
	rec := do(t, svc.Handler(), "POST", "/orders", `{"item":"tea"}`, http.Header{"Authorization": {"Bearer x.y.z"}})
	if rec.Code != 401 || !strings.Contains(rec.Header().Get("Www-Authenticate"), "Bearer") {
		t.Errorf("scoped endpoint: %d %v", rec.Code, rec.Header())
	}
	defer func() {
		if v := recover(); v == nil || !strings.Contains(v.(string), "Public") {
			t.Errorf("panic %v, want one about Public with Scopes", v)
		}
	}()
	ferry.Handle(svc, ferry.Endpoint[Empty, Empty]{Service: "orders", Name: "bad", Method: "GET", Path: "/bad",
		Auth: ferry.Auth{Public: true, Scopes: []string{"x"}}}, func(context.Context, *Empty) (*Empty, error) { return nil, nil })
}

func TestAuthMisconfiguredFailsStart(t *testing.T) {
	cfg := ferrytest.Config(t)
	cfg.APIKeysFile = filepath.Join(t.TempDir(), "missing")
	svc := ferry.MustNew("orders", "1.0.0", quiet, ferry.WithConfig(cfg))
	ferry.Handle(svc, whoamiEP, func(ctx context.Context, _ *Empty) (*PrincipalSeen, error) { return whoami(ctx), nil })
	h, _ := ferry.NewHost(quiet)
	_ = h.Add(svc)
	err := h.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "API keys") || !strings.Contains(err.Error(), "orders") {
		t.Fatalf("Start = %v, want an error naming the service and the API keys file", err)
	}
	// Served without a host, the same service answers 500 and says why in
	// its log.
	if rec := do(t, svc.Handler(), "GET", "/whoami", "", nil); rec.Code != 500 || problem(t, rec.Body.Bytes())["code"] != "authentication_misconfigured" {
		t.Errorf("%d %s", rec.Code, rec.Body)
	}
}

func TestAuthSeenByMiddleware(t *testing.T) {
	k := rsaKeys()
	type seen struct {
		status  int
		subject string
	}
	var mu sync.Mutex
	var calls []seen
	observe := func(next ferry.Handler) ferry.Handler {
		return func(ctx context.Context, req *ferry.Request) error {
			err := next(ctx, req)
			s := seen{status: 200}
			var fe *ferry.Error
			if errors.As(err, &fe) {
				s.status = fe.Status
			}
			if p := req.Principal(); p != nil {
				s.subject = p.Subject
			}
			mu.Lock()
			calls = append(calls, s)
			mu.Unlock()
			return err
		}
	}
	svc := ferry.MustNew("orders", "1.0.0", quiet, ferry.WithMiddleware(observe),
		ferry.WithJWT(ferry.JWTConfig{Keys: []crypto.PublicKey{&k[0].PublicKey}}))
	ferry.Handle(svc, whoamiEP, func(ctx context.Context, _ *Empty) (*PrincipalSeen, error) { return whoami(ctx), nil })
	do(t, svc.Handler(), "GET", "/whoami", "", nil)
	do(t, svc.Handler(), "GET", "/whoami", "", http.Header{"Authorization": {"Bearer " + signToken(t, jwt.SigningMethodRS256, k[0], "", nil)}})
	want := []seen{{401, ""}, {200, "alice"}}
	if len(calls) != 2 || calls[0] != want[0] || calls[1] != want[1] {
		t.Errorf("middleware saw %v, want %v", calls, want)
	}
}

// writeKeys writes an API keys file and returns its path.
func writeKeys(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "api-keys")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAuthBetweenServices(t *testing.T) {
	k := rsaKeys()
	srv := serveJWKS(t, map[string]crypto.PublicKey{"k1": &k[0].PublicKey})
	orders := securedService(t, srv.URL, &syncBuffer{})

	// The gateway passes its caller's credentials on to the services it
	// calls, with a client middleware.
	forward := func(next ferry.ClientHandler) ferry.ClientHandler {
		return func(ctx context.Context, m *ferry.OutgoingMessage) error {
			if r := ferry.RequestFromContext(ctx); r != nil && r.Header("Authorization") != "" {
				m.Header.Set("Authorization", r.Header("Authorization"))
			}
			return next(ctx, m)
		}
	}
	gateway := ferry.MustNew("gateway", "1.0.0", quiet, ferry.WithNATS(), ferry.WithClientMiddleware(forward))
	ferry.Get(gateway, "me", "/me", func(ctx context.Context, _ *Empty) (*PrincipalSeen, error) {
		return whoamiEP.Call(ctx, gateway.Client(), nil)
	})
	h := ferrytest.Start(t, orders, gateway)
	ctx := context.Background()
	valid := signToken(t, jwt.SigningMethodRS256, k[0], "k1", nil)

	// A typed call with credentials of its own.
	out, err := whoamiEP.Call(ctx, h.Client, nil, ferry.CallHeader("Authorization", "Bearer "+valid))
	if err != nil || out.Body.Subject != "alice" || out.Body.Issuer != testIssuer {
		t.Errorf("Call with a token = %+v, %v", out, err)
	}
	// Without: the callee's 401, as a CallError.
	_, err = whoamiEP.Call(ctx, h.Client, nil)
	var ce *ferry.CallError
	if !errors.As(err, &ce) || ce.Status != http.StatusUnauthorized || ce.Code != "unauthorized" {
		t.Errorf("Call without credentials = %v, want the callee's 401", err)
	}

	// Through the gateway, the caller's token reaches orders.
	base := ferrytest.URL(t, gateway)
	status, _, body := callHTTP(t, base, "GET", "/me", "", http.Header{"Authorization": {"Bearer " + valid}})
	if status != 200 || !strings.Contains(body, `"subject":"alice"`) {
		t.Errorf("gateway with a token: %d %s", status, body)
	}
	// Without one, orders refuses the gateway's call; the gateway's caller
	// gets the boundary's 502, not a 401 that would ask it for credentials
	// the gateway does not require.
	status, header, body := callHTTP(t, base, "GET", "/me", "", nil)
	if status != http.StatusBadGateway || header.Get("Www-Authenticate") != "" || strings.Contains(body, "requires authentication") {
		t.Errorf("gateway without a token: %d %v %s", status, header, body)
	}
}
