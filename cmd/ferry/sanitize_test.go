package main

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestSanitize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text, ünïcode ✓", "plain text, ünïcode ✓"},
		{"lines\nand\ttabs", "lines\nand\ttabs"},
		{"osc\x1b]52;c;eA==\x07", `osc\u001b]52;c;eA==\u0007`},
		{"carriage\rreturn", `carriage\u000dreturn`},
		{"c1 \u009b2J", `c1 \u009b2J`},
		{"invalid \x9b byte", `invalid \x9b byte`},
		{"del\x7f", `del\u007f`},
	} {
		if got := sanitize(tc.in); got != tc.want {
			t.Errorf("sanitize(%q) = %q, want %q", tc.in, got, tc.want)
		}
		var b bytes.Buffer
		if _, err := (safeWriter{&b}).Write([]byte(tc.in)); err != nil || b.String() != tc.want {
			t.Errorf("safeWriter(%q) wrote %q, %v", tc.in, b.String(), err)
		}
	}
	// JSON stays JSON, with the same strings.
	doc, _ := json.Marshal(map[string]string{"d": "a\u009bb"})
	var back map[string]string
	if err := json.Unmarshal([]byte(sanitize(string(doc))), &back); err != nil || back["d"] != "a\u009bb" {
		t.Errorf("escaped JSON %s: %v %q", sanitize(string(doc)), err, back["d"])
	}
}
