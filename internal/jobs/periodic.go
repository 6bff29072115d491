package jobs

import (
	"context"
	"crypto/sha256"
	"errors"

	"github.com/nats-io/nats.go/jetstream"
)

// TickID is the ID of the run a periodic job's tick starts: derived from
// what identifies the tick, so a tick delivered twice, or fired by two
// brokers, is one job. It has the shape of a random ID (ValidID holds).
func TickID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return idEncoding.EncodeToString(h.Sum(nil)[:16])
}

// scheduleKey is the key of a periodic job's schedule: the ID of the run
// it last started.
func scheduleKey(job, schedule string) string { return "c." + job + "." + schedule }

// LastRun returns the ID of the run a schedule last started ("" if none)
// and the key's revision (0 if it has none), for SetLastRun.
func (s *Store) LastRun(ctx context.Context, job, schedule string) (id string, revision uint64, err error) {
	e, err := s.kv.Get(ctx, scheduleKey(job, schedule))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return "", 0, nil
	case err != nil:
		return "", 0, err
	}
	return string(e.Value()), e.Revision(), nil
}

// SetLastRun records id as the schedule's last run if the key is still at
// revision (0: it has none). A write that lost a race fails with an error
// for which Conflict holds.
func (s *Store) SetLastRun(ctx context.Context, job, schedule, id string, revision uint64) error {
	k := scheduleKey(job, schedule)
	if revision == 0 {
		_, err := s.kv.Create(ctx, k, []byte(id))
		return err
	}
	_, err := s.kv.Update(ctx, k, []byte(id), revision)
	return err
}

// ForgetSchedule removes a schedule's key (the schedule was removed).
func (s *Store) ForgetSchedule(ctx context.Context, job, schedule string) error {
	err := s.kv.Purge(ctx, scheduleKey(job, schedule))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	return err
}
