package ferry_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
	"github.com/ferrygo/ferry/internal/broker"
)

// TestReview12RunSystemBrokerAdmitsAnyLocalUser: RunSystem now makes its
// embedded broker listen on loopback by default (no FERRY_NATS_LISTEN,
// no -nats-listen), and a loopback broker admits any connection — so
// every user of the machine can now call the system's endpoints, read
// and forge its events, replay or purge its dead letters and delete its
// streams, with no flag asking for it. docs/configuration.md still says
// FERRY_NATS_LISTEN defaults to "none" and advises "on a machine you
// share, keep the broker in process", which RunSystem no longer allows.
// Either the default listener needs the data directory's NKey (as a
// non-loopback one does; the ferry command already reads it from
// broker.url), or the default must stay in process.
//
// Failed before the fix: a bare nats.Connect to the published URL
// succeeds.
func TestReview12RunSystemBrokerAdmitsAnyLocalUser(t *testing.T) {
	for _, env := range []string{"FERRY_NATS_URL", "FERRY_NATS_LISTEN", "FERRY_NATS_EMBED"} {
		t.Setenv(env, "")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- ferry.RunSystem(ctx, nil, []string{"-data-dir", dir, "-shutdown-grace", "1s", "-addr", "127.0.0.1:0"},
			ferry.Part{Name: "a", New: func() (*ferry.Service, error) { return ferry.New("a", "1.0.0", ferry.WithoutHTTP(), quiet) }})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	var url string
	ferrytest.Eventually(t, func() bool {
		url, _, _ = broker.Published(dir)
		return url != ""
	}, "RunSystem publishes its broker's URL")
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err == nil {
		defer nc.Close()
		t.Errorf("RunSystem's default broker (%s) admits a connection with no credentials: any local user reaches the whole system", url)
	}
}
