package ferry

// How a service verifies credentials at run time: the authenticators
// built from its configuration, the middleware that checks each endpoint
// call against its Auth, and the host component that builds them at start.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ferrygo/ferry/internal/auth"
	"github.com/ferrygo/ferry/internal/lifecycle"
)

// HeaderAPIKey is the header that carries an API key (the other way is
// Authorization: ApiKey <key>).
const HeaderAPIKey = "X-API-Key"

// serviceAuth is a service's authentication: what its options gave, the
// Auth declared by each endpoint, and the authenticators built from them
// and its configuration (at start, or at the first call of a service
// served without a host).
type serviceAuth struct {
	opts  authOptions
	rules sync.Map // endpoint name → endpointSecurity

	mu      sync.Mutex
	current atomic.Pointer[authenticators]
	err     error // the last build's failure, answered until a rebuild
}

// endpointSecurity is what an endpoint declared.
type endpointSecurity struct {
	auth   Auth
	errors []int
}

// authenticators verify credentials for one service.
type authenticators struct {
	jwt      *auth.Verifier // nil: bearer tokens are not accepted
	keys     *auth.KeyStore // nil: API keys are not accepted
	realm    string
	explicit bool // some endpoint requires credentials in any case
}

// verifies reports whether any credentials can be verified.
func (a *authenticators) verifies() bool { return a.jwt != nil || a.keys != nil }

// requirement returns whether a call of an endpoint declaring a must
// bring credentials, and the scopes it must hold, on a service that
// verifies credentials or not.
func (a Auth) requirement(verifies bool) (bool, []string) {
	switch {
	case a.Public:
		return false, nil
	case len(a.Scopes) > 0:
		return true, a.Scopes
	}
	return verifies, nil
}

// jwtSettings returns the service's JWT settings: its WithJWT, else its
// configuration's; nil when neither gives keys.
func (s *Service) jwtSettings() *JWTConfig {
	if s.auth.opts.jwt != nil {
		return s.auth.opts.jwt
	}
	return s.config.jwtConfig()
}

// verifiesAPIKeys reports whether the service accepts API keys.
func (s *Service) verifiesAPIKeys() bool {
	return len(s.auth.opts.keys) > 0 || s.config.APIKeysFile != ""
}

// declareAuth records what endpoint name declared (Handle checked it).
func (s *Service) declareAuth(name string, a Auth, errs []int) {
	s.auth.rules.Store(name, endpointSecurity{auth: Auth{Public: a.Public, Scopes: slices.Clone(a.Scopes)}, errors: slices.Clone(errs)})
	s.resetAuth()
}

func (s *Service) endpointSecurity(name string) endpointSecurity {
	v, _ := s.auth.rules.Load(name)
	d, _ := v.(endpointSecurity)
	return d
}

// resetAuth drops the built authenticators, so the next call or start
// builds them from the current configuration.
func (s *Service) resetAuth() {
	s.auth.mu.Lock()
	s.auth.current.Store(nil)
	s.auth.err = nil
	s.auth.mu.Unlock()
}

// authenticators returns the service's authenticators, building them on
// first use. ctx bounds the first fetch of a JWKS URL when warm is set.
func (s *Service) authenticators(ctx context.Context, warm bool) (*authenticators, error) {
	if a := s.auth.current.Load(); a != nil {
		return a, nil
	}
	s.auth.mu.Lock()
	defer s.auth.mu.Unlock()
	if a := s.auth.current.Load(); a != nil {
		return a, nil
	}
	if s.auth.err != nil {
		return nil, s.auth.err
	}
	a, err := s.buildAuthenticators()
	if err != nil {
		s.auth.err = fmt.Errorf("ferry: service %s: authentication: %w", s.name, err)
		return nil, s.auth.err
	}
	if warm && a.jwt != nil {
		_ = a.jwt.Warm(ctx) // a failure is logged; the keys are fetched again when needed
	}
	s.auth.current.Store(a)
	return a, nil
}

func (s *Service) buildAuthenticators() (*authenticators, error) {
	a := &authenticators{realm: s.name}
	s.auth.rules.Range(func(_, v any) bool {
		if len(v.(endpointSecurity).auth.Scopes) > 0 {
			a.explicit = true
		}
		return true
	})
	if j := s.jwtSettings(); j != nil {
		v, err := auth.NewVerifier(auth.JWTOptions{
			JWKSURL: j.JWKSURL, KeyFile: j.KeyFile, Keys: j.Keys, Issuer: j.Issuer, Audience: j.Audience,
			Leeway: j.Leeway, RefreshInterval: j.RefreshInterval, MinRefreshInterval: j.MinRefreshInterval,
			HTTPClient: j.HTTPClient, Logger: s.logger,
		})
		if err != nil {
			return nil, err
		}
		a.jwt = v
	}
	if s.verifiesAPIKeys() {
		keys := slices.Clone(s.auth.opts.keys)
		if f := s.config.APIKeysFile; f != "" {
			fromFile, err := auth.LoadAPIKeys(f)
			if err != nil {
				return nil, err
			}
			keys = append(keys, fromFile...)
		}
		store, err := auth.NewKeyStore(keys)
		if err != nil {
			return nil, err
		}
		a.keys = store
	}
	return a, nil
}

// authenticate is the middleware that checks endpoint calls against their
// Auth: the innermost of the service's chain, so every middleware outside
// it sees a refusal as the call's outcome. It answers 401 for missing or
// invalid credentials and 403 for missing scopes, and otherwise runs next
// with the Principal in the context.
func (s *Service) authenticate(next Handler) Handler {
	return func(ctx context.Context, req *Request) error {
		if req.Kind != KindEndpoint {
			return next(ctx, req)
		}
		a, err := s.authenticators(ctx, false)
		if err != nil {
			s.logger.ErrorContext(ctx, "ferry: authentication is not configured correctly", slog.String("service", s.name),
				slog.String("request_id", req.ID), slog.String("err", err.Error()))
			return &Error{Status: http.StatusInternalServerError, Code: "authentication_misconfigured",
				Detail: "the service cannot verify credentials; the request ID identifies the problem in its logs"}
		}
		if !a.verifies() && !a.explicit {
			return next(ctx, req) // authentication off: nothing to look at
		}
		decl := s.endpointSecurity(req.Name).auth
		required, scopes := decl.requirement(a.verifies())
		p, refused := a.verify(ctx, req)
		if !required {
			if p != nil {
				req.principal = p
				ctx = context.WithValue(ctx, principalKey{}, p)
			}
			return next(ctx, req)
		}
		var fe *Error
		switch {
		case refused != nil:
			fe = a.unauthorized(refused.Refusal, refused.scheme)
		case p == nil:
			fe = a.challenge()
		case !holdsAll(p, scopes):
			fe = a.forbidden(p, scopes)
		}
		if fe != nil {
			attrs := []any{slog.String("service", s.name), slog.String("endpoint", req.Name), slog.String("request_id", req.ID),
				slog.String("transport", req.Transport), slog.Int("status", fe.Status), slog.String("code", fe.Code), slog.String("reason", fe.Detail)}
			if p != nil {
				attrs = append(attrs, slog.String("subject", p.Subject))
			}
			if refused != nil && refused.Err != nil {
				attrs = append(attrs, slog.String("err", refused.Err.Error()))
			}
			s.logger.DebugContext(ctx, "ferry: call refused", attrs...)
			return fe
		}
		req.principal = p
		return next(context.WithValue(ctx, principalKey{}, p), req)
	}
}

// refusal is why the credentials of a call were refused, and the scheme
// they came in ("" when none could be told).
type refusal struct {
	*auth.Refusal
	scheme string
}

// verify reads the credentials of req: nil, nil when it brings none.
func (a *authenticators) verify(ctx context.Context, req *Request) (*Principal, *refusal) {
	var id *auth.Identity
	var err error
	scheme := ""
	if h := req.Header("Authorization"); h != "" {
		name, cred, ok := auth.ParseAuthorization(h)
		switch {
		case !ok:
			return nil, &refusal{&auth.Refusal{Code: "invalid_credentials", Reason: "the Authorization header is malformed; send Authorization: " + a.schemeHint()}, ""}
		case strings.EqualFold(name, "Bearer") && a.jwt != nil:
			scheme = SchemeBearer
			id, err = a.jwt.Verify(ctx, cred)
		case strings.EqualFold(name, "ApiKey") && a.keys != nil:
			scheme = SchemeAPIKey
			id, err = a.keys.Verify(cred)
		default:
			return nil, &refusal{&auth.Refusal{Code: "invalid_credentials", Reason: "the Authorization scheme is not accepted here; send Authorization: " + a.schemeHint()}, ""}
		}
	} else if k := req.Header(HeaderAPIKey); k != "" {
		scheme = SchemeAPIKey
		switch {
		case a.keys == nil:
			return nil, &refusal{&auth.Refusal{Code: "invalid_credentials", Reason: "this service does not accept API keys; send Authorization: " + a.schemeHint()}, ""}
		case !auth.IsCredential(k):
			return nil, &refusal{&auth.Refusal{Code: auth.CodeInvalidAPIKey, Reason: "the API key is malformed"}, scheme}
		}
		id, err = a.keys.Verify(k)
	} else {
		return nil, nil
	}
	if err != nil {
		var r *auth.Refusal
		if !errors.As(err, &r) {
			r = &auth.Refusal{Code: auth.CodeInvalidToken, Reason: "the credentials could not be verified", Err: err}
		}
		return nil, &refusal{r, scheme}
	}
	return &Principal{Scheme: id.Scheme, Subject: id.Subject, Scopes: id.Scopes, Claims: id.Claims}, nil
}

// schemeHint names the credentials the service accepts.
func (a *authenticators) schemeHint() string {
	switch {
	case a.jwt != nil && a.keys != nil:
		return "Bearer <token>, or an API key in " + HeaderAPIKey
	case a.keys != nil:
		return "ApiKey <key>, or the key in " + HeaderAPIKey
	}
	return "Bearer <token>"
}

// challenges returns the WWW-Authenticate values of the accepted schemes
// (RFC 6750, section 3), with params appended to the challenge of scheme:
// the one the refused credentials came in.
func (a *authenticators) challenges(scheme, params string) []string {
	var out []string
	if a.jwt != nil || a.keys == nil {
		c := `Bearer realm="` + a.realm + `"`
		if scheme == SchemeBearer {
			c += params
		}
		out = append(out, c)
	}
	if a.keys != nil {
		c := `ApiKey realm="` + a.realm + `"`
		if scheme == SchemeAPIKey {
			c += params
		}
		out = append(out, c)
	}
	return out
}

// challenge is the 401 of a call without credentials.
func (a *authenticators) challenge() *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "unauthorized",
		Detail: "this endpoint requires authentication; send Authorization: " + a.schemeHint(),
		Header: http.Header{"Www-Authenticate": a.challenges("", "")}}
}

// unauthorized is the 401 of refused credentials; the detail says why,
// never what was sent. The challenge of the scheme they came in carries
// the error (RFC 6750: invalid_token); a header that names no accepted
// scheme is answered with the plain challenges.
func (a *authenticators) unauthorized(r *auth.Refusal, scheme string) *Error {
	params := `, error="invalid_token", error_description="` + r.Reason + `"`
	return &Error{Status: http.StatusUnauthorized, Code: r.Code, Detail: r.Reason,
		Header: http.Header{"Www-Authenticate": a.challenges(scheme, params)}}
}

// forbidden is the 403 of a caller without the scopes required.
func (a *authenticators) forbidden(p *Principal, scopes []string) *Error {
	scheme := "Bearer"
	if p.Scheme == SchemeAPIKey {
		scheme = "ApiKey"
	}
	list := strings.Join(scopes, " ")
	return &Error{Status: http.StatusForbidden, Code: "insufficient_scope",
		Detail: "this endpoint requires the scopes " + list + "; the credentials do not grant them all",
		Header: http.Header{"Www-Authenticate": {scheme + ` realm="` + a.realm + `", error="insufficient_scope", scope="` + list + `"`}}}
}

// holdsAll reports whether p holds every one of scopes.
func holdsAll(p *Principal, scopes []string) bool {
	for _, s := range scopes {
		if !p.HasScope(s) {
			return false
		}
	}
	return true
}

// authComponent builds each service's authenticators when the host
// starts, so a bad key file or API key file fails the start, and fetches
// the JWKS URL's keys once (a failure is logged: the keys are fetched
// again when a token needs them). It logs what each service accepts.
func (h *Host) authComponent() lifecycle.Component {
	return lifecycle.Funcs{ComponentName: "authentication", OnStart: func(ctx context.Context) error {
		for _, s := range h.services {
			a, err := s.authenticators(ctx, true)
			if err != nil {
				return err
			}
			s.logAuth(a)
		}
		return nil
	}}
}

// logAuth says at start what the service verifies, and warns of settings
// that accept more than intended.
func (s *Service) logAuth(a *authenticators) {
	var schemes, public, scoped []string
	if a.jwt != nil {
		schemes = append(schemes, "bearer JWT")
	}
	if a.keys != nil {
		schemes = append(schemes, fmt.Sprintf("API keys (%d)", a.keys.Len()))
	}
	s.auth.rules.Range(func(k, v any) bool {
		d := v.(endpointSecurity).auth
		switch {
		case d.Public:
			public = append(public, k.(string))
		case len(d.Scopes) > 0:
			scoped = append(scoped, k.(string))
		}
		return true
	})
	slices.Sort(public)
	slices.Sort(scoped)
	switch {
	case a.verifies():
		s.logger.Info("ferry: verifying credentials", slog.String("service", s.name), slog.Any("accepts", schemes), slog.Any("public", public))
		if j := s.jwtSettings(); j != nil && (j.Issuer == "" || len(j.Audience) == 0) {
			s.logger.Warn("ferry: bearer tokens are accepted from any issuer or for any audience the keys sign for; set FERRY_JWT_ISSUER and FERRY_JWT_AUDIENCE",
				slog.String("service", s.name))
		}
	case len(scoped) > 0:
		s.logger.Warn("ferry: endpoints require scopes but the service verifies no credentials, so they refuse every call; set FERRY_JWT_JWKS_URL, FERRY_JWT_KEY_FILE or FERRY_API_KEYS_FILE",
			slog.String("service", s.name), slog.Any("endpoints", scoped))
	}
}

// authenticateAPIOperation is the Huma API middleware that holds
// operations registered directly on [Service.API] (a Server-Sent Events
// stream, say) to the service's default requirement: they do not pass
// through the service's chain, so without it they would answer anyone on
// a service that verifies credentials. Endpoints bound with Handle are
// checked in the chain, per their Auth, and pass here untouched.
func (s *Service) authenticateAPIOperation(hctx huma.Context, next func(huma.Context)) {
	op := hctx.Operation()
	if op != nil && s.bound(op.OperationID) {
		next(hctx)
		return
	}
	name := ""
	if op != nil {
		name = op.OperationID
	}
	req := &Request{Kind: KindEndpoint, Service: s.name, Name: name, Transport: TransportHTTP,
		ID: incomingRequestID(callOutcome(hctx, httpResponseWriter(hctx)), hctx.Header(HeaderRequestID)), header: hctx.Header, logger: s.logger, calls: &s.calls}
	ran := false
	err := s.authenticate(func(ctx context.Context, r *Request) error {
		ran = true
		if r.principal != nil {
			next(huma.WithContext(hctx, ctx))
			return nil
		}
		next(hctx)
		return nil
	})(withRequest(hctx.Context(), req), req)
	if err != nil && !ran && hctx.Status() == 0 {
		s.writeHumaError(hctx, errorFrom(err).complete(req.ID))
	}
}

// bound reports whether name is an endpoint bound with Handle.
func (s *Service) bound(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.endpoints[name]
	return ok
}
