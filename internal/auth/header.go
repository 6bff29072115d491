package auth

import "strings"

// MaxCredentialBytes bounds the credentials read from a header: a longer
// token or key is refused before it is parsed.
const MaxCredentialBytes = 16 << 10

// ParseAuthorization splits an Authorization header value into its scheme
// and credentials (RFC 9110, section 11.4): a scheme token, one or more
// spaces, and one credential of visible ASCII characters without spaces
// (a token68, such as a JWT, or an API key). The scheme is returned as
// given; compare it case-insensitively. ok is false for anything else —
// no credentials, several words of them, control or non-ASCII characters —
// so a caller answers "malformed" without guessing.
func ParseAuthorization(v string) (scheme, credentials string, ok bool) {
	v = strings.Trim(v, " \t")
	i := strings.IndexAny(v, " \t")
	if i <= 0 {
		return "", "", false
	}
	scheme, credentials = v[:i], strings.TrimLeft(v[i:], " \t")
	if !isToken(scheme) || !IsCredential(credentials) {
		return "", "", false
	}
	return scheme, credentials, true
}

// IsCredential reports whether s can be a credential: 1 to
// MaxCredentialBytes visible ASCII characters, no spaces.
func IsCredential(s string) bool {
	if s == "" || len(s) > MaxCredentialBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// isToken reports whether s is an RFC 9110 token (a scheme name).
func isToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
