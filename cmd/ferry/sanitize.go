package main

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// What ferry prints comes from anyone on the broker — discovery answers,
// dead letters' errors, events' payloads — so control characters, which
// would drive the operator's terminal (ESC sequences retitle it, write
// its clipboard, erase lines), are shown escaped: \u001b, \x9b. Line
// feeds and tabs stay.

// sanitize returns s with control characters and invalid bytes escaped.
func sanitize(s string) string {
	if clean(s) {
		return s
	}
	var b strings.Builder
	escapeTo(&b, []byte(s))
	return b.String()
}

// clean reports whether s holds nothing to escape.
func clean(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, needsEscape)
}

func needsEscape(r rune) bool {
	return r < 0x20 && r != '\n' && r != '\t' || r >= 0x7f && r < 0xa0 || r == utf8.RuneError
}

// escapeTo writes p to b with control characters and invalid bytes
// escaped. Inside a JSON string, \u00XX is the same character, so JSON
// stays JSON.
func escapeTo(b *strings.Builder, p []byte) {
	for len(p) > 0 {
		r, size := utf8.DecodeRune(p)
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(b, `\x%02x`, p[0])
		case needsEscape(r):
			fmt.Fprintf(b, `\u%04x`, r)
		default:
			b.Write(p[:size])
		}
		p = p[size:]
	}
}

// safeWriter escapes control characters in what is written to w. Each
// Write is escaped on its own: ferry writes whole lines and documents.
type safeWriter struct{ w io.Writer }

func (s safeWriter) Write(p []byte) (int, error) {
	text := string(p)
	if clean(text) {
		return s.w.Write(p)
	}
	var b strings.Builder
	escapeTo(&b, p)
	if _, err := io.WriteString(s.w, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}
