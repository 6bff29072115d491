package ferry

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ferrygo/ferry/internal/auth"
)

// Auth says who may call an endpoint: the Auth field of [Endpoint]. Its
// zero value is the service's default — callers must authenticate when
// the service verifies credentials (a JWT key source or API keys is
// configured), and anyone may call when it verifies none. Public endpoints
// say so; endpoints that need scopes list them, and are refused to every
// caller when the service verifies no credentials.
//
// Auth is checked in the service's middleware chain, before the input is
// decoded, identically for calls over HTTP and over NATS
// (docs/security.md).
type Auth struct {
	// Public lets anyone call the endpoint, without credentials. Valid
	// credentials still name a [Principal]; invalid ones are ignored.
	Public bool
	// Scopes lists the scopes a caller must hold, every one of them: a
	// call whose credentials lack one is refused with 403. Setting Scopes
	// requires authentication whatever the service's default.
	Scopes []string
}

// check reports a contradiction or a scope that is not an OAuth scope
// token.
func (a Auth) check() error {
	if a.Public && len(a.Scopes) > 0 {
		return errors.New("Auth is Public but lists Scopes; a public endpoint cannot require scopes")
	}
	for _, s := range a.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\"\\") || !isPrintableASCII(s) {
			return fmt.Errorf("Auth scope %q is not an OAuth scope token (printable ASCII, no spaces, quotes or backslashes)", s)
		}
	}
	return nil
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Schemes of credentials, as found in [Principal.Scheme].
const (
	SchemeBearer = auth.SchemeBearer // a bearer JWT
	SchemeAPIKey = auth.SchemeAPIKey // an API key
)

// Principal is the caller that verified credentials name: available to
// handlers with [PrincipalFromContext] and to middleware with
// [Request.Principal]. It holds no credential.
type Principal struct {
	// Scheme is SchemeBearer or SchemeAPIKey.
	Scheme string
	// Subject is the token's sub claim, or the API key's name.
	Subject string
	// Scopes are the token's scopes (its scope or scp claim), or the API
	// key's.
	Scopes []string
	// Claims are the verified token's claims; nil for an API key.
	Claims map[string]any
}

// HasScope reports whether the principal holds scope.
func (p *Principal) HasScope(scope string) bool {
	return p != nil && slices.Contains(p.Scopes, scope)
}

type principalKey struct{}

// PrincipalFromContext returns the caller verified for the call being
// handled, or nil when it brought no valid credentials (a public
// endpoint, or a service that verifies none).
func PrincipalFromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// Principal returns the caller verified for the request, or nil; set once
// the service's authentication has run (inside the service's middleware,
// and after next returns in middleware outside it).
func (r *Request) Principal() *Principal { return r.principal }

// DefaultJWTLeeway is the clock skew allowed on a token's exp, nbf and iat
// when Config.JWTLeeway is 0.
const DefaultJWTLeeway = auth.DefaultLeeway

// maxJWTLeeway bounds the configured leeway.
const maxJWTLeeway = 5 * time.Minute

// JWTConfig configures bearer JWT verification in code: [WithJWT]. Tokens
// must be signed with an asymmetric algorithm (RS*, PS*, ES*, EdDSA) by
// one of the keys given, carry exp, and pass the issuer and audience
// checks when those are set.
type JWTConfig struct {
	// JWKSURL is the identity provider's JWK Set: fetched at start, cached,
	// fetched again when older than RefreshInterval (in the background)
	// and when a token names a key ID it lacks (at most once per
	// MinRefreshInterval).
	JWKSURL string
	// KeyFile holds PEM public keys (used whatever a token's kid) or a
	// JWK Set (keys found by kid).
	KeyFile string
	// Keys are public keys (RSA of 2048 bits or more, ECDSA, Ed25519).
	Keys []crypto.PublicKey
	// Issuer, when set, must equal the token's iss.
	Issuer string
	// Audience, when set, must contain one of the token's aud values.
	Audience []string
	// Leeway is the clock skew allowed; 0 means DefaultJWTLeeway.
	Leeway time.Duration
	// RefreshInterval (default 1h) and MinRefreshInterval (default 30s)
	// tune the JWKS URL's cache.
	RefreshInterval, MinRefreshInterval time.Duration
	// HTTPClient fetches the JWK Set; nil means a client with a 10s timeout.
	HTTPClient *http.Client
}

// hasKeys reports whether c names any key source.
func (c *JWTConfig) hasKeys() bool {
	return c != nil && (c.JWKSURL != "" || c.KeyFile != "" || len(c.Keys) > 0)
}

// WithJWT makes the service verify bearer JWTs as c says, instead of the
// Config's FERRY_JWT_* settings: the Go form of those settings, which can
// also give keys in code. Service only.
func WithJWT(c JWTConfig) Option {
	return func(o *options) error {
		if !c.hasKeys() {
			return errors.New("ferry: WithJWT: no keys: set JWKSURL, KeyFile or Keys")
		}
		if c.JWKSURL != "" {
			if err := checkHTTPURL(c.JWKSURL); err != nil {
				return fmt.Errorf("ferry: WithJWT: JWKSURL: %w", err)
			}
		}
		for i, k := range c.Keys {
			if err := auth.CheckPublicKey(k); err != nil {
				return fmt.Errorf("ferry: WithJWT: Keys[%d]: %w", i, err)
			}
		}
		if c.Leeway < 0 || c.Leeway > maxJWTLeeway {
			return fmt.Errorf("ferry: WithJWT: Leeway %s: must be from 0 to %s", c.Leeway, maxJWTLeeway)
		}
		c.Keys = slices.Clone(c.Keys)
		c.Audience = slices.Clone(c.Audience)
		o.auth.jwt = &c
		return nil
	}
}

// APIKey is an accepted API key, given in code with [WithAPIKeys]. The key
// itself is never configured, only its hash.
type APIKey struct {
	// Name identifies the key's holder: the Subject of its [Principal].
	Name string
	// Hash is the key's SHA-256, as [HashAPIKey] writes it:
	// sha256:<64 hex digits>.
	Hash string
	// Scopes are the scopes the key grants.
	Scopes []string
}

// HashAPIKey returns the hash of an API key as configuration holds it:
// sha256:<64 hex digits>, the same as `printf %s KEY | sha256sum`. API
// keys should be long and random (32 random bytes, base64-encoded): the
// hash is then safe to keep in configuration.
func HashAPIKey(key string) string { return auth.HashKey(key) }

// WithAPIKeys adds API keys the service accepts, besides those of the
// Config's API keys file (FERRY_API_KEYS_FILE). A caller presents a key
// in the X-API-Key header or as Authorization: ApiKey <key>. Service only.
func WithAPIKeys(keys ...APIKey) Option {
	return func(o *options) error {
		for _, k := range keys {
			h, err := auth.ParseHash(k.Hash)
			if err != nil {
				return fmt.Errorf("ferry: WithAPIKeys: key %s: %w", k.Name, err)
			}
			ak := auth.APIKey{Name: k.Name, Hash: h, Scopes: slices.Clone(k.Scopes)}
			if err := auth.CheckKey(ak); err != nil {
				return fmt.Errorf("ferry: WithAPIKeys: %w", err)
			}
			o.auth.keys = append(o.auth.keys, ak)
		}
		return nil
	}
}

// authOptions are the options of [WithJWT] and [WithAPIKeys].
type authOptions struct {
	jwt  *JWTConfig
	keys []auth.APIKey
}

// checkHTTPURL reports whether s is an absolute http or https URL.
func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be an http or https URL")
	}
	return nil
}

// checkOrigin reports whether s is a CORS origin Ferry accepts: * or
// scheme://host[:port], whose host may start with one *. wildcard.
func checkOrigin(s string) error {
	if s == "*" {
		return nil
	}
	host := s
	if i := strings.Index(s, "://*."); i >= 0 {
		host = s[:i] + "://wildcard." + s[i+len("://*."):] // the one wildcard allowed: the first label
	}
	u, err := url.Parse(host)
	if err != nil || strings.Contains(host, "*") || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("origin %q: want scheme://host[:port] (https://app.example.com, https://*.example.com) or *", s)
	}
	return nil
}

// checkSecurity reports authentication and CORS settings set in code that
// LoadConfig would refuse.
func (c Config) checkSecurity() error {
	if c.JWTJWKSURL != "" {
		if err := checkHTTPURL(c.JWTJWKSURL); err != nil {
			return fmt.Errorf("ferry: Config.JWTJWKSURL: %w (flag -jwt-jwks-url, env FERRY_JWT_JWKS_URL)", err)
		}
	}
	if c.JWTLeeway < 0 || c.JWTLeeway > maxJWTLeeway {
		return fmt.Errorf("ferry: Config.JWTLeeway %s: must be from 0 to %s (flag -jwt-leeway, env FERRY_JWT_LEEWAY)", c.JWTLeeway, maxJWTLeeway)
	}
	for _, o := range splitList(c.CORSOrigins) {
		if err := checkOrigin(o); err != nil {
			return fmt.Errorf("ferry: Config.CORSOrigins: %w (flag -cors-origins, env FERRY_CORS_ORIGINS)", err)
		}
	}
	return nil
}

// jwtConfig returns the JWT settings of c, or nil when it gives no keys.
func (c Config) jwtConfig() *JWTConfig {
	j := &JWTConfig{JWKSURL: c.JWTJWKSURL, KeyFile: c.JWTKeyFile, Issuer: c.JWTIssuer, Audience: splitList(c.JWTAudience), Leeway: c.JWTLeeway}
	if !j.hasKeys() {
		return nil
	}
	return j
}
