package auth

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// Algorithms are the signing algorithms a token may use: asymmetric ones
// only. "none" and the HMAC family are never accepted, so a token cannot
// pass by naming no algorithm, or by using a public key as an HMAC secret.
var Algorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// DefaultLeeway is the clock skew allowed on exp, nbf and iat.
const DefaultLeeway = 30 * time.Second

// JWTOptions configures a [Verifier]. At least one of JWKSURL, KeyFile and
// Keys gives the keys; a token signed by any of them is accepted.
type JWTOptions struct {
	// JWKSURL is an identity provider's JWK Set, fetched and cached.
	JWKSURL string
	// KeyFile holds PEM public keys or a JWK Set.
	KeyFile string
	// Keys are public keys given in code.
	Keys []crypto.PublicKey
	// Issuer, when set, must equal the token's iss.
	Issuer string
	// Audience, when set, must contain one of the token's aud values.
	Audience []string
	// Leeway is the clock skew allowed; 0 means DefaultLeeway.
	Leeway time.Duration
	// RefreshInterval, MinRefreshInterval and FetchTimeout tune the JWKS
	// URL's cache (0: the defaults).
	RefreshInterval, MinRefreshInterval, FetchTimeout time.Duration
	// HTTPClient fetches the JWK Set; nil means a client with FetchTimeout.
	HTTPClient *http.Client
	// Logger receives failed fetches (never a token).
	Logger *slog.Logger
	// Now is the clock, for tests; nil means time.Now.
	Now func() time.Time
}

// Verifier checks bearer JWTs: the signature with a configured key and an
// accepted algorithm, exp (required), nbf and iat with the leeway, the
// issuer and the audience. It is safe for concurrent use.
type Verifier struct {
	parser   *jwt.Parser
	sets     []keyfunc.Keyfunc // a key file's JWK Set, then the JWKS URL's
	remote   *remoteSet
	static   []crypto.PublicKey
	issuer   string
	audience []string
}

// NewVerifier reads the key file and prepares the JWKS URL's cache; it
// fetches nothing ([Verifier.Warm] does).
func NewVerifier(o JWTOptions) (*Verifier, error) {
	v := &Verifier{issuer: o.Issuer, audience: o.Audience}
	for i, k := range o.Keys {
		if err := CheckPublicKey(k); err != nil {
			return nil, fmt.Errorf("JWT key %d: %w", i, err)
		}
		pub, _ := verificationKey(k)
		v.static = append(v.static, pub)
	}
	use := []jwkset.USE{jwkset.UseSig, ""}
	if o.KeyFile != "" {
		f, err := loadKeyFile(o.KeyFile)
		if err != nil {
			return nil, err
		}
		v.static = append(v.static, f.static...)
		if f.set != nil {
			kf, err := keyfunc.New(keyfunc.Options{Storage: f.set, UseWhitelist: use})
			if err != nil {
				return nil, err
			}
			v.sets = append(v.sets, kf)
		}
	}
	if o.JWKSURL != "" {
		r, err := newRemoteSet(o.JWKSURL, o)
		if err != nil {
			return nil, err
		}
		kf, err := keyfunc.New(keyfunc.Options{Storage: r, UseWhitelist: use})
		if err != nil {
			return nil, err
		}
		v.remote = r
		v.sets = append(v.sets, kf)
	}
	if len(v.sets) == 0 && len(v.static) == 0 {
		return nil, errors.New("JWT: no keys: give a JWKS URL, a key file or keys")
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(Algorithms),
		jwt.WithLeeway(orDefault(o.Leeway, DefaultLeeway)),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	}
	if o.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(o.Issuer))
	}
	if len(o.Audience) > 0 {
		opts = append(opts, jwt.WithAudience(o.Audience...))
	}
	if o.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(o.Now))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// Warm fetches the JWKS URL's keys, if there is one; an error says the
// keys could not be fetched (they will be fetched again when needed).
func (v *Verifier) Warm(ctx context.Context) error {
	if v.remote == nil {
		return nil
	}
	return v.remote.Warm(ctx)
}

// Verify checks a bearer token and returns who it names, or a *[Refusal]
// that says what is wrong without repeating the token.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Identity, error) {
	if len(raw) > MaxCredentialBytes {
		return nil, &Refusal{Code: CodeInvalidToken, Reason: "the bearer token is too large"}
	}
	claims := jwt.MapClaims{}
	tok, err := v.parser.ParseWithClaims(raw, claims, v.keyfunc(ctx))
	if err != nil {
		return nil, v.refusal(tok, claims, err)
	}
	sub, _ := claims["sub"].(string)
	return &Identity{Scheme: SchemeBearer, Subject: sub, Scopes: scopesOf(claims), Claims: claims}, nil
}

// keyfunc returns the candidate keys of a token: by kid from the JWK Sets
// (the URL's fetched again for an unknown kid), and the keys given without
// a kid. Only public keys of the accepted kinds are returned.
func (v *Verifier) keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		if _, crit := t.Header["crit"]; crit {
			return nil, errCritical
		}
		var keys []jwt.VerificationKey
		add := func(k any) {
			if pub, ok := verificationKey(k); ok {
				keys = append(keys, pub)
			}
		}
		_, hasKID := t.Header["kid"]
		var mismatch error
		for _, set := range v.sets {
			if hasKID && len(keys) > 0 {
				break // found by kid: the other sets need not look (nor fetch)
			}
			k, err := set.KeyfuncCtx(ctx)(t)
			switch {
			case err == nil:
				if ks, ok := k.(jwt.VerificationKeySet); ok {
					for _, k := range ks.Keys {
						add(k)
					}
				} else {
					add(k)
				}
			case errors.Is(err, jwkset.ErrKeyNotFound):
			default:
				mismatch = err // the key's alg or use does not fit the token
			}
		}
		for _, k := range v.static {
			add(k)
		}
		switch {
		case len(keys) > 0:
			return jwt.VerificationKeySet{Keys: keys}, nil
		case mismatch != nil:
			return nil, mismatch
		}
		return nil, ErrUnknownKey
	}
}

var errCritical = errors.New("auth: the token has critical header parameters")

// refusal maps a parse error to what the caller is told.
func (v *Verifier) refusal(tok *jwt.Token, claims jwt.MapClaims, err error) *Refusal {
	r := &Refusal{Code: CodeInvalidToken, Err: err}
	alg := ""
	if tok != nil {
		alg, _ = tok.Header["alg"].(string)
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		r.Reason = "the bearer token is malformed"
	case tok != nil && !slices.Contains(Algorithms, alg):
		r.Reason = "the bearer token's signing algorithm is not accepted"
	case errors.Is(err, errCritical):
		r.Reason = "the bearer token has critical header parameters this service does not understand"
	case errors.Is(err, ErrUnknownKey):
		r.Reason = "the bearer token is signed by an unknown key"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		r.Reason = "the bearer token cannot be verified with the configured keys"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		r.Reason = "the bearer token's signature is not valid"
	case errors.Is(err, jwt.ErrTokenExpired):
		r.Code, r.Reason = CodeTokenExpired, "the bearer token has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		r.Reason = "the bearer token is not valid yet (nbf)"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		r.Reason = "the bearer token is issued in the future (iat)"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		r.Reason = "the bearer token lacks a required claim (" + v.missingClaim(claims) + ")"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		r.Reason = "the bearer token's issuer is not accepted"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		r.Reason = "the bearer token's audience is not accepted"
	default:
		r.Reason = "the bearer token is not valid"
	}
	return r
}

// missingClaim names the required claim a token lacks.
func (v *Verifier) missingClaim(claims jwt.MapClaims) string {
	switch {
	case claims["exp"] == nil:
		return "exp"
	case v.issuer != "" && claims["iss"] == nil:
		return "iss"
	case len(v.audience) > 0 && claims["aud"] == nil:
		return "aud"
	}
	return "exp, iss or aud"
}
