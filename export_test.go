package ferry

import (
	"context"
	"flag"
	"time"

	"github.com/ferrygo/ferry/internal/envelope"
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
