package ferry

import (
	"context"
	"fmt"
	"net/url"
	"strings"
)

// Redaction: the credentials a request carries never reach the service's
// log, even when a handler puts them into the error it returns or the
// value it panics with (an upstream's "token … refused", say). Ferry's
// own messages never contain them; these are the texts it logs but did
// not write.

// redacted replaces a credential in a logged text.
const redacted = "[redacted]"

// minSecret is the shortest credential redacted: shorter ones ("1",
// "on") would blank unrelated words. minCookieSecret is the shortest
// cookie value redacted: a cookie holds preferences ("consent=declined")
// as often as a session, and a session's ID is long.
const (
	minSecret       = 6
	minCookieSecret = 16
)

// redactCredentials returns s with every credential found by header (a
// request's header lookup) replaced: each credential header's value as a
// whole, the token after its scheme ("Bearer …", "ApiKey …"), and a
// cookie's long values — each also in the forms a URL's query and path
// escape it to, as an upstream's error quotes the URL it was sent in.
func redactCredentials(header func(string) string, s string) string {
	if header == nil || s == "" {
		return s
	}
	for _, name := range credentialHeaders {
		v := strings.TrimSpace(header(name))
		if v == "" {
			continue
		}
		var secrets []string
		if name == "Cookie" {
			for c := range strings.SplitSeq(v, ";") {
				if _, val, ok := strings.Cut(c, "="); ok && len(strings.TrimSpace(val)) >= minCookieSecret {
					secrets = append(secrets, strings.TrimSpace(val))
				}
			}
		} else {
			secrets = append(secrets, v)
			if _, tok, ok := strings.Cut(v, " "); ok {
				secrets = append(secrets, strings.TrimSpace(tok))
			}
		}
		for _, sec := range secrets {
			if len(sec) < minSecret {
				continue
			}
			s = strings.ReplaceAll(s, sec, redacted)
			for _, escaped := range []string{url.QueryEscape(sec), url.PathEscape(sec)} {
				if escaped != sec {
					s = strings.ReplaceAll(s, escaped, redacted)
				}
			}
		}
	}
	return s
}

// redactFor is redactCredentials with the credentials of the request ctx
// belongs to (none outside a handler).
func redactFor(ctx context.Context, s string) string {
	if req := RequestFromContext(ctx); req != nil {
		return redactCredentials(req.Header, s)
	}
	return s
}

// panicText is a recovered panic value as logged: its text, with the
// credentials found by header redacted.
func panicText(header func(string) string, v any) string {
	return redactCredentials(header, fmt.Sprint(v))
}
