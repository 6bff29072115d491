package ferry

import (
	"net/http"
	"testing"
)

// TestReview13_RedactionBlanksOrdinaryWordsFromCookies: every value of the
// Cookie header of 8 characters or more is treated as a credential, so an
// ordinary cookie a site sets (consent=declined, theme=darkmode) blanks
// that word wherever it appears in every logged error of the request:
// "payment declined by the issuer" is logged as "payment [redacted] by
// the issuer", and the operator reading the log loses what failed. Only
// credential-bearing cookies (or none: docs/security.md says credentials
// are headers, not cookies) should be redacted.
//
// FAILS on the current code: the words are redacted.
func TestReview13_RedactionBlanksOrdinaryWordsFromCookies(t *testing.T) {
	tests := []struct {
		name, cookie, text string
	}{
		{"consent cookie", "consent=declined", "payment declined by the issuer"},
		{"theme cookie", "theme=darkmode; lang=en", "asset darkmode.css missing from the bundle"},
		{"feature cookie", "ab=checkout; tz=UTC", "step checkout failed: stock service unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Cookie": {tt.cookie}}
			if got := redactCredentials(h.Get, tt.text); got != tt.text {
				t.Errorf("redactCredentials(Cookie %q, %q) = %q; want the text unchanged (no credential in it)", tt.cookie, tt.text, got)
			}
		})
	}
}
