package broker

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestReview4_PermissionViolationsAreRateLimited: a publish the account
// may not make (a reply to a caller's inbox without allow_responses, say)
// is reported by nats.go with sub == nil and the subject inside the error
// text ("... for Publish to \"_INBOX.<nuid>.<token>\""), a new one per
// call. errorLog keys on (subject, err.Error()), so every such error is a
// new key and is logged at ERROR: the per-event noise the issue asks to
// rate-limit is not limited at all, and past 1024 keys the map is cleared
// (losing the counts of the keys that were limited).
func TestReview4_PermissionViolationsAreRateLimited(t *testing.T) {
	var buf bytes.Buffer
	l := newErrorLog(slog.New(slog.NewTextHandler(&buf, nil)), 10*time.Second)
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	for i := range 500 {
		// As nats.go's processErr builds it for a publish permissions violation.
		err := fmt.Errorf("%w: %s", nats.ErrPermissionViolation,
			fmt.Sprintf("Permissions Violation for Publish to %q", fmt.Sprintf("_INBOX.Fq3bXbQx3ChKZ0Yv5VZB0k.%d", i)))
		l.report("", err)
	}
	if n := strings.Count(buf.String(), "ferry: broker error"); n > 10 {
		t.Errorf("%d ERROR lines within one interval for 500 replies refused by the same permission: not rate-limited", n)
	}
}
