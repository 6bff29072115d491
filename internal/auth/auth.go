// Package auth verifies the credentials a call carries: bearer JWTs
// (github.com/golang-jwt/jwt/v5, with keys from a JWKS URL, a JWKS file, a
// PEM file or code, resolved by github.com/MicahParks/keyfunc/v3) and API
// keys (compared by their SHA-256 hash in constant time). It knows nothing
// of services or transports: the root package asks it to verify a header's
// credentials and maps what it answers to problem details.
//
// Nothing here puts a credential in an error, a log line or a refusal's
// reason: a [Refusal] says what is wrong (expired, wrong audience) without
// repeating the token or key.
package auth

import (
	"errors"
	"strings"
)

// Schemes of credentials, as found in [Identity.Scheme].
const (
	SchemeBearer = "bearer"
	SchemeAPIKey = "apikey"
)

// Identity is who verified credentials belong to.
type Identity struct {
	// Scheme is SchemeBearer or SchemeAPIKey.
	Scheme string
	// Subject is the token's sub claim, or the API key's name.
	Subject string
	// Scopes are the token's scope (or scp) claim, or the key's scopes.
	Scopes []string
	// Claims are the token's claims; nil for an API key.
	Claims map[string]any
}

// Refusal codes: what is wrong with credentials, as a machine code.
const (
	CodeInvalidToken  = "invalid_token"
	CodeTokenExpired  = "token_expired"
	CodeInvalidAPIKey = "invalid_api_key"
)

// Refusal reports credentials that were presented but not accepted. Reason
// is safe to send to the caller and to log: it never contains the
// credential. Err, when set, is the verifier's own error, for the logs of
// the service (it does not contain the credential either).
type Refusal struct {
	Code   string
	Reason string
	Err    error
}

// Error implements error.
func (r *Refusal) Error() string { return "auth: " + r.Reason }

// Unwrap returns the underlying error.
func (r *Refusal) Unwrap() error { return r.Err }

// ErrUnknownKey is the error of a token whose signing key is not among
// the configured ones (its kid is unknown even after a refresh).
var ErrUnknownKey = errors.New("auth: the token's signing key is unknown")

// scopesOf reads the OAuth scopes of claims: "scope" as a space-separated
// string (RFC 8693), or "scp" as a string or an array of strings.
func scopesOf(claims map[string]any) []string {
	var out []string
	add := func(v any) {
		switch v := v.(type) {
		case string:
			out = append(out, strings.Fields(v)...)
		case []any:
			for _, s := range v {
				if s, ok := s.(string); ok && s != "" && !strings.ContainsAny(s, " \t") {
					out = append(out, s)
				}
			}
		case []string:
			out = append(out, v...)
		}
	}
	add(claims["scope"])
	add(claims["scp"])
	return out
}
