package ferry

import (
	"context"
	"flag"
	"time"

	"github.com/ferrygo/ferry/internal/envelope"
	"github.com/ferrygo/ferry/internal/jobs"
	"github.com/ferrygo/ferry/internal/telemetry"
)

// Invoke exposes the in-memory transport to the external tests.
func (s *Service) Invoke(ctx context.Context, name string, req *envelope.Request) *envelope.Response {
	return s.invoke(ctx, transportMemory, name, req)
}

// LoadConfigEnv is LoadConfig with a fake environment.
func LoadConfigEnv(fs *flag.FlagSet, args []string, env map[string]string) (Config, error) {
	return loadConfig(fs, args, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
}

// ObserveWith adds ob to the service's observers when its host starts.
func ObserveWith(ob telemetry.Observer) Option {
	return func(o *options) error { o.testObserver = ob; return nil }
}

// SetLongRetry sets the least retry delay that waits as a message
// schedule, until the test ends.
func SetLongRetry(t interface{ Cleanup(func()) }, d time.Duration) {
	old := longRetry
	longRetry = d
	t.Cleanup(func() { longRetry = old })
}

// SetRebindAfter sets how old a uniqueness key whose job has no record
// must be to be bound to a new job, until the test ends (0: a test that
// removes a record stands for its retention having passed).
func SetRebindAfter(t interface{ Cleanup(func()) }, d time.Duration) {
	old := rebindAfter
	rebindAfter = d
	t.Cleanup(func() { rebindAfter = old })
}

// SetJobState moves a job's record to state (leaving the other fields as
// they are), kept for keep after the write (0: until the next one),
// as a worker with JobRetention(keep) would (which allows no less than
// 1m).
func SetJobState(ctx context.Context, c *Client, id string, state JobState, keep time.Duration) error {
	store, err := c.jobStore(ctx)
	if err != nil {
		return err
	}
	_, err = store.Update(ctx, id, func(rec *jobs.Record) (time.Duration, error) {
		rec.State, rec.FinishedAt = jobs.State(state), time.Now().UTC()
		return keep, nil
	})
	return err
}
