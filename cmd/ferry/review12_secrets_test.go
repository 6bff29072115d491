package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestReview12ServerURLPasswordNotPrinted: a --server URL with a user and
// password that does not parse (a typo in the port, a missing bracket)
// makes ferry print the password: the broker's redact hides the URL it
// names, but nats.Connect's error quotes the whole URL again. Terminals,
// shell histories aside, and CI logs keep it.
//
// Failed before the fix.
func TestReview12ServerURLPasswordNotPrinted(t *testing.T) {
	for _, url := range []string{
		"nats://alice:s3cret@127.0.0.1:42x2",
		"nats://alice:s3cret@[::1",
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"services", "--server", url, "--timeout", "1s"}, &out, &errb)
		if code == 0 {
			t.Errorf("%s: exit 0", url)
		}
		if s := out.String() + errb.String(); strings.Contains(s, "s3cret") {
			t.Errorf("ferry printed the password of --server: %q", s)
		}
	}
}
