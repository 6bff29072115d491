package broker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// errorLog logs the connection's asynchronous errors (a slow consumer,
// a permissions violation) at most once per interval for each subject and
// error: such errors can come once per message, and one line with a count
// of those left out says as much as a thousand.
type errorLog struct {
	log      *slog.Logger
	interval time.Duration
	now      func() time.Time

	mu   sync.Mutex
	seen map[errorKey]*errorSeen
}

type errorKey struct{ subject, err string }

type errorSeen struct {
	logged     time.Time
	suppressed int
}

// errorKind is what errors are told apart by: the client's sentinel for
// the errors whose text names a subject of their own (a permission
// violation on each reply's inbox), otherwise the text.
func errorKind(err error) string {
	for _, kind := range []error{nats.ErrPermissionViolation, nats.ErrSlowConsumer, nats.ErrAuthorization, nats.ErrAuthExpired, nats.ErrAuthRevoked} {
		if errors.Is(err, kind) {
			return kind.Error()
		}
	}
	return err.Error()
}

// maxErrorKeys bounds what errorLog remembers; past it, it starts afresh.
const maxErrorKeys = 1024

func newErrorLog(log *slog.Logger, interval time.Duration) *errorLog {
	return &errorLog{log: log, interval: interval, now: time.Now, seen: map[errorKey]*errorSeen{}}
}

// report logs err on subject unless the same was logged within the
// interval, in which case it is counted and said with the next line.
func (l *errorLog) report(subject string, err error) {
	k := errorKey{subject, errorKind(err)}
	now := l.now()
	l.mu.Lock()
	s := l.seen[k]
	if s != nil && now.Sub(s.logged) < l.interval {
		s.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := 0
	if s == nil {
		if len(l.seen) >= maxErrorKeys {
			clear(l.seen)
		}
		s = &errorSeen{}
		l.seen[k] = s
	} else {
		suppressed = s.suppressed
	}
	s.logged, s.suppressed = now, 0
	l.mu.Unlock()
	attrs := []slog.Attr{slog.String("subject", subject), slog.String("err", err.Error())}
	if suppressed > 0 {
		attrs = append(attrs, slog.Int("repeated", suppressed), slog.Duration("within", l.interval))
	}
	l.log.LogAttrs(context.Background(), slog.LevelError, "ferry: broker error", attrs...)
}
