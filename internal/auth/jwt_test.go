package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
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
)

// Keys are made once: RSA generation is slow under -race.
var testKeys = sync.OnceValue(func() struct {
	rsaA, rsaB *rsa.PrivateKey
	ec         *ecdsa.PrivateKey
	ed         ed25519.PrivateKey
} {
	a, _ := rsa.GenerateKey(rand.Reader, 2048)
	b, _ := rsa.GenerateKey(rand.Reader, 2048)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	return struct {
		rsaA, rsaB *rsa.PrivateKey
		ec         *ecdsa.PrivateKey
		ed         ed25519.PrivateKey
	}{a, b, ec, ed}
})

// sign makes a token with method, key and kid ("" for none).
func sign(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claims returns valid claims for issuer "https://id.example" and audience
// "orders", with changes applied.
func claims(changes map[string]any) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"sub": "alice", "iss": "https://id.example", "aud": "orders",
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "scope": "orders:read orders:write"}
	for k, v := range changes {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// jwksJSON is the public JWK Set of keys by kid.
func jwksJSON(t *testing.T, keys map[string]crypto.PublicKey) []byte {
	t.Helper()
	store := jwkset.NewMemoryStorage()
	for kid, k := range keys {
		jwk, err := jwkset.NewJWKFromKey(k, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, USE: jwkset.UseSig}})
		if err != nil {
			t.Fatal(err)
		}
		if err := store.KeyWrite(context.Background(), jwk); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := store.JSONPublic(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func pemPublic(t *testing.T, k crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVerify(t *testing.T) {
	k := testKeys()
	pemFile := writeFile(t, "key.pem", pemPublic(t, &k.rsaA.PublicKey))
	setFile := writeFile(t, "jwks.json", jwksJSON(t, map[string]crypto.PublicKey{"ec1": &k.ec.PublicKey, "ed1": k.ed.Public()}))
	v, err := NewVerifier(JWTOptions{KeyFile: pemFile, Issuer: "https://id.example", Audience: []string{"orders", "billing"}})
	if err != nil {
		t.Fatal(err)
	}
	vset, err := NewVerifier(JWTOptions{KeyFile: setFile, Issuer: "https://id.example", Audience: []string{"orders"}})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	pubDER, _ := x509.MarshalPKIXPublicKey(&k.rsaA.PublicKey)
	past := time.Now().Add(-time.Hour).Unix()

	tests := []struct {
		name   string
		v      *Verifier
		token  string
		code   string // "" for accepted
		reason string
	}{
		{"RS256 from a PEM key", v, sign(t, jwt.SigningMethodRS256, k.rsaA, "", claims(nil)), "", ""},
		{"PS384 from a PEM key, any kid", v, sign(t, jwt.SigningMethodPS384, k.rsaA, "whatever", claims(nil)), "", ""},
		{"second audience", v, sign(t, jwt.SigningMethodRS256, k.rsaA, "", claims(map[string]any{"aud": []string{"billing"}})), "", ""},
		{"ES256 by kid", vset, sign(t, jwt.SigningMethodES256, k.ec, "ec1", claims(nil)), "", ""},
		{"EdDSA by kid", vset, sign(t, jwt.SigningMethodEdDSA, k.ed, "ed1", claims(nil)), "", ""},
		{"ES256 without kid", vset, sign(t, jwt.SigningMethodES256, k.ec, "", claims(nil)), "", ""},
		{"expired within leeway", v, sign(t, jwt.SigningMethodRS256, k.rsaA, "", claims(map[string]any{"exp": time.Now().Add(-10 * time.Second).Unix()})), "", ""},
		{"expired", v, sign(t, jwt.SigningMethodRS256, k.rsaA, "", claims(map[string]any{"exp": past})), CodeTokenExpired, "has expired"},
		{"not yet valid", v, sign(t, jwt.SigningMethodRS256, k.rsaA, "", claims(map[string]any{"nbf": time.Now().Add(time.Hour).Unix()})), CodeInvalidToken, "not valid yet"},
		{"issued in the future", v, sign(t, jwt.SigningMethodRS256, k.rsaA, "", claims(map[string]any{"iat": time.Now().Add(time.Hour).Unix()})), CodeInvalidToken, "issued in the future"},
		{"no exp", v, sign(t, jwt.SigningMethodRS256, k.rsaA, "", claims(map[string]any{"exp": nil})), CodeInvalidToken, "required claim (exp)"},
		{"wrong issuer", v, sign(t, jwt.SigningMethodRS256, k.rsaA, "", claims(map[string]any{"iss": "https://evil.example"})), CodeInvalidToken, "issuer is not accepted"},
		{"no issuer", v, sign(t, jwt.SigningMethodRS256, k.rsaA, "", claims(map[string]any{"iss": nil})), CodeInvalidToken, "required claim (iss)"},
		{"wrong audience", v, sign(t, jwt.SigningMethodRS256, k.rsaA, "", claims(map[string]any{"aud": "shipping"})), CodeInvalidToken, "audience is not accepted"},
		{"no audience", v, sign(t, jwt.SigningMethodRS256, k.rsaA, "", claims(map[string]any{"aud": nil})), CodeInvalidToken, "required claim (aud)"},
		{"another key", v, sign(t, jwt.SigningMethodRS256, other, "", claims(nil)), CodeInvalidToken, "signature is not valid"},
		{"unknown kid", vset, sign(t, jwt.SigningMethodES256, k.ec, "nope", claims(nil)), CodeInvalidToken, "unknown key"},
		{"RS256 with an EC kid", vset, sign(t, jwt.SigningMethodRS256, k.rsaA, "ec1", claims(nil)), CodeInvalidToken, "signature is not valid"},
		{"alg none", v, sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims(nil)), CodeInvalidToken, "algorithm is not accepted"},
		{"HS256 with the PEM public key as secret", v, sign(t, jwt.SigningMethodHS256, pemPublic(t, &k.rsaA.PublicKey), "", claims(nil)), CodeInvalidToken, "algorithm is not accepted"},
		{"HS256 with the DER public key as secret", v, sign(t, jwt.SigningMethodHS256, pubDER, "", claims(nil)), CodeInvalidToken, "algorithm is not accepted"},
		{"malformed", v, "not.a.jwt", CodeInvalidToken, "malformed"},
		{"two segments", v, "abc.def", CodeInvalidToken, "malformed"},
		{"too large", v, strings.Repeat("a", MaxCredentialBytes+1), CodeInvalidToken, "too large"},
		{"critical header", v, func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims(nil))
			tok.Header["crit"] = []string{"exp"}
			s, _ := tok.SignedString(k.rsaA)
			return s
		}(), CodeInvalidToken, "critical header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := tt.v.Verify(context.Background(), tt.token)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if id.Subject != "alice" || id.Scheme != SchemeBearer || strings.Join(id.Scopes, " ") != "orders:read orders:write" || id.Claims["iss"] != "https://id.example" {
					t.Errorf("identity %+v", id)
				}
				return
			}
			var r *Refusal
			if !errors.As(err, &r) {
				t.Fatalf("err = %v, want a refusal", err)
			}
			if r.Code != tt.code || !strings.Contains(r.Reason, tt.reason) {
				t.Errorf("refusal %q %q, want %q containing %q", r.Code, r.Reason, tt.code, tt.reason)
			}
			if len(tt.token) > 20 && (strings.Contains(r.Error(), tt.token[len(tt.token)-20:]) || (r.Err != nil && strings.Contains(r.Err.Error(), tt.token[len(tt.token)-20:]))) {
				t.Errorf("the refusal repeats the token: %v / %v", r, r.Err)
			}
		})
	}
}

func TestScopesClaim(t *testing.T) {
	tests := []struct {
		claims map[string]any
		want   string
	}{
		{map[string]any{"scope": "a b  c"}, "a b c"},
		{map[string]any{"scp": "a b"}, "a b"},
		{map[string]any{"scp": []any{"a", "b", 3, "c d"}}, "a b"},
		{map[string]any{"scope": "a", "scp": []any{"b"}}, "a b"},
		{map[string]any{"scope": 42}, ""},
		{map[string]any{}, ""},
	}
	for _, tt := range tests {
		if got := strings.Join(scopesOf(tt.claims), " "); got != tt.want {
			t.Errorf("scopesOf(%v) = %q, want %q", tt.claims, got, tt.want)
		}
	}
}

func TestNewVerifierRefusesBadKeys(t *testing.T) {
	k := testKeys()
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	privDER, _ := x509.MarshalPKCS8PrivateKey(k.rsaA)
	tests := []struct {
		name string
		o    JWTOptions
		want string
	}{
		{"no keys", JWTOptions{}, "no keys"},
		{"missing file", JWTOptions{KeyFile: filepath.Join(t.TempDir(), "none.pem")}, "no such file"},
		{"private key file", JWTOptions{KeyFile: writeFile(t, "priv.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}))}, "private key"},
		{"small RSA key", JWTOptions{Keys: []crypto.PublicKey{&small.PublicKey}}, "too small"},
		{"HMAC secret", JWTOptions{Keys: []crypto.PublicKey{[]byte("secret")}}, "cannot verify"},
		{"not a key file", JWTOptions{KeyFile: writeFile(t, "x.txt", []byte("hello"))}, "no PEM public key"},
		{"symmetric JWK Set", JWTOptions{KeyFile: writeFile(t, "oct.json", []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"s"}]}`))}, "key 0"},
		{"bad URL", JWTOptions{JWKSURL: "ftp://id.example/jwks"}, "http or https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewVerifier(tt.o); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// jwksServer serves a JWK Set that the test can change or break, counting
// the fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	body    []byte
	status  int
	fetches atomic.Int32
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	s := &jwksServer{body: body, status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(s.status)
		_, _ = w.Write(s.body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(status int, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

func TestJWKSRotation(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t, jwksJSON(t, map[string]crypto.PublicKey{"a": &k.rsaA.PublicKey}))
	v, err := NewVerifier(JWTOptions{JWKSURL: srv.URL + "/jwks"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if srv.fetches.Load() != 0 {
		t.Fatal("NewVerifier fetched")
	}
	tokA := sign(t, jwt.SigningMethodRS256, k.rsaA, "a", claims(nil))
	tokB := sign(t, jwt.SigningMethodRS256, k.rsaB, "b", claims(nil))
	if _, err := v.Verify(ctx, tokA); err != nil {
		t.Fatalf("first token: %v", err)
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for the first token, want 1", n)
	}

	// The provider rotates: b replaces a. The first token naming b makes
	// the verifier fetch the set again.
	srv.set(http.StatusOK, jwksJSON(t, map[string]crypto.PublicKey{"b": &k.rsaB.PublicKey}))
	if _, err := v.Verify(ctx, tokA); err != nil {
		t.Fatalf("a before anyone presented b: %v", err)
	}
	if _, err := v.Verify(ctx, tokB); err != nil {
		t.Fatalf("token of the new key: %v", err)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after the rotation, want 2", n)
	}
	// a is gone from the set: revoked.
	var r *Refusal
	if _, err := v.Verify(ctx, tokA); !errors.As(err, &r) || !strings.Contains(r.Reason, "unknown key") {
		t.Errorf("token of the removed key: %v", err)
	}
	// Made-up kids do not make it fetch again within the minimum interval.
	for i := range 5 {
		tok := sign(t, jwt.SigningMethodRS256, k.rsaB, "made-up-"+string(rune('0'+i)), claims(nil))
		if _, err := v.Verify(ctx, tok); err == nil {
			t.Fatal("an unknown kid was accepted")
		}
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Errorf("%d fetches after unknown kids, want still 2 (rate-limited)", n)
	}
}

func TestJWKSRefreshPolicy(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t, jwksJSON(t, map[string]crypto.PublicKey{"a": &k.rsaA.PublicKey}))
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	v, err := NewVerifier(JWTOptions{JWKSURL: srv.URL, RefreshInterval: time.Hour, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := v.Warm(ctx); err != nil {
		t.Fatal(err)
	}
	tokA := sign(t, jwt.SigningMethodRS256, k.rsaA, "a", claims(map[string]any{"exp": time.Now().Add(48 * time.Hour).Unix()}))

	// The provider fails: the keys already fetched stay in use.
	srv.set(http.StatusInternalServerError, []byte("oops"))
	now.Add(int64(2 * time.Hour))
	if _, err := v.Verify(ctx, tokA); err != nil {
		t.Fatalf("after a failed refresh: %v", err)
	}
	waitFor(t, "a background fetch", func() bool { return srv.fetches.Load() == 2 })
	waitFor(t, "the background fetch to end", func() bool { return !v.remote.background.Load() })
	if _, err := v.Verify(ctx, tokA); err != nil {
		t.Fatalf("the failed fetch dropped the keys: %v", err)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Errorf("%d fetches right after a failure, want 2 (retried after the minimum interval)", n)
	}

	// An empty set is a failure too, not a revocation of every key.
	srv.set(http.StatusOK, []byte(`{"keys":[]}`))
	now.Add(int64(time.Minute))
	_, _ = v.Verify(ctx, tokA)
	waitFor(t, "the next background fetch", func() bool { return srv.fetches.Load() == 3 && !v.remote.background.Load() })
	if _, err := v.Verify(ctx, tokA); err != nil {
		t.Fatalf("an empty set dropped the keys: %v", err)
	}

	// A provider that answers again is read on the next stale check.
	srv.set(http.StatusOK, jwksJSON(t, map[string]crypto.PublicKey{"b": &k.rsaB.PublicKey}))
	now.Add(int64(time.Minute))
	_, _ = v.Verify(ctx, tokA)
	waitFor(t, "the set to change", func() bool {
		keys, _ := v.remote.MemoryJWKSet.KeyReadAll(ctx)
		return len(keys) == 1 && keys[0].Marshal().KID == "b"
	})
}

func TestJWKSWarmFailure(t *testing.T) {
	srv := newJWKSServer(t, []byte(`not json`))
	v, err := NewVerifier(JWTOptions{JWKSURL: srv.URL + "/jwks?secret=x"})
	if err != nil {
		t.Fatal(err)
	}
	err = v.Warm(context.Background())
	if err == nil || strings.Contains(err.Error(), "secret=x") {
		t.Errorf("Warm = %v, want an error without the URL's query", err)
	}
	var big strings.Builder
	big.WriteString(`{"keys":[`)
	for big.Len() < maxJWKSBytes+10 {
		big.WriteString(`{"kty":"EC"},`)
	}
	srv.set(http.StatusOK, []byte(big.String()))
	if err := v.Warm(context.Background()); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Warm of a huge set = %v", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
