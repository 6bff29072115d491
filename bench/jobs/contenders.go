package main

import (
	"context"
	"fmt"
	"github.com/ferrygo/ferry/bench/internal/procstat"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/internal/naming"
)

// contender is one system measured.
type contender struct {
	name string
	// server names the processes whose CPU counts as the contender's
	// server's (none: the broker runs in this process).
	server []string
	// prepare checks the server and readies it once per run (a scratch
	// database), and describes its durability settings.
	prepare func(ctx context.Context, o *options) (durability string, err error)
	// cleanup undoes prepare at the end of the run.
	cleanup func(ctx context.Context, o *options)
	// start starts a fresh instance whose handler runs s.run.
	start func(ctx context.Context, o *options, s *sink) (instance, error)
}

// instance is one contender, started: enqueueing and working.
type instance interface {
	// enqueue enqueues one job and returns once the contender has stored it.
	enqueue(ctx context.Context, p *payload) error
	// done returns how many jobs the contender records as done since it
	// started.
	done(ctx context.Context) (int, error)
	// counters returns the contender's write counters (see writes/job in
	// the report).
	counters(ctx context.Context) (map[string]float64, error)
	// verify checks, untimed, that total jobs are recorded done.
	verify(ctx context.Context, total int) error
	close(ctx context.Context) error
}

var contenders = map[string]*contender{
	"ferry-interval": {name: "ferry-interval", prepare: prepareFerry(syncInterval), start: startFerry(syncInterval)},
	"ferry-always":   {name: "ferry-always", prepare: prepareFerry(syncAlways), start: startFerry(syncAlways)},
	"river":          {name: "river", server: []string{"postgres"}, prepare: prepareRiver, cleanup: cleanupRiver, start: startRiver},
	"asynq":          {name: "asynq", server: []string{"redis-server"}, prepare: prepareAsynq, start: startAsynq},
}

func contenderNames() []string {
	var names []string
	for n := range contenders {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// ---- Ferry ----

// syncMode is how the embedded broker syncs its store.
type syncMode struct {
	Name     string
	Always   bool
	Interval time.Duration
}

var (
	syncInterval = syncMode{Name: "interval-1s", Interval: ferry.DefaultSyncInterval}
	syncAlways   = syncMode{Name: "always", Always: true}
)

// noop is the job: its input carries the sequence number and enqueue
// time; its output is empty.
var noop = ferry.Job[payload, struct{}]{Name: "bench-noop", Description: "Does nothing."}

func prepareFerry(m syncMode) func(context.Context, *options) (string, error) {
	return func(context.Context, *options) (string, error) {
		if m.Always {
			return "embedded nats-server " + natsVersion() + ", file storage, fsync of every write (SyncAlways)", nil
		}
		return "embedded nats-server " + natsVersion() + ", file storage, fsync every " + m.Interval.String() + " (the default)", nil
	}
}

type ferryInstance struct {
	host   *ferry.Host
	client *ferry.Client
	js     jetstream.JetStream
	dir    string // the broker's store, removed by close
	mu     sync.Mutex
	ids    []string
}

func startFerry(m syncMode) func(context.Context, *options, *sink) (instance, error) {
	return func(ctx context.Context, o *options, s *sink) (instance, error) {
		dir, err := os.MkdirTemp(o.dir, "ferry-bench-jobs-*")
		if err != nil {
			return nil, err
		}
		cfg := ferry.Config{NATSEmbed: true, DataDir: dir, SyncAlways: m.Always, SyncInterval: m.Interval, LogLevel: slog.LevelWarn}
		svc, err := ferry.New("bench", "1.0.0", ferry.WithConfig(cfg), ferry.WithLogger(logger()), ferry.WithoutHTTP())
		if err != nil {
			return nil, err
		}
		ferry.HandleJob(svc, noop, func(_ context.Context, in *payload, _ *ferry.Progress) (*struct{}, error) {
			s.run(in)
			return &struct{}{}, nil
		}, ferry.JobConcurrency(concurrency))
		h, err := ferry.NewHost(ferry.WithConfig(cfg), ferry.WithLogger(logger()))
		if err == nil {
			err = h.Add(svc)
		}
		if err == nil {
			err = h.Start(ctx)
		}
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		js, err := jetstream.New(h.NATS())
		if err != nil {
			_ = h.Shutdown(ctx)
			os.RemoveAll(dir)
			return nil, err
		}
		return &ferryInstance{host: h, client: ferry.NewClient(h.NATS()), js: js, dir: dir}, nil
	}
}

func (f *ferryInstance) enqueue(ctx context.Context, p *payload) error {
	id, err := noop.Enqueue(ctx, f.client, p)
	if err != nil {
		return err
	}
	if p.Seq%97 == 0 { // a sample, checked by verify
		f.mu.Lock()
		f.ids = append(f.ids, id)
		f.mu.Unlock()
	}
	return nil
}

// streamState is a stream's state.
func (f *ferryInstance) streamState(ctx context.Context, name string) (jetstream.StreamState, error) {
	s, err := f.js.Stream(ctx, name)
	if err != nil {
		return jetstream.StreamState{}, err
	}
	si, err := s.Info(ctx)
	if err != nil {
		return jetstream.StreamState{}, err
	}
	return si.State, nil
}

// done counts the job messages acknowledged: the job stream is a work
// queue, whose messages go once acknowledged, and a worker acknowledges a
// job's message after writing its final record.
func (f *ferryInstance) done(ctx context.Context) (int, error) {
	st, err := f.streamState(ctx, naming.JobStream(noop.Name))
	if err != nil {
		return 0, err
	}
	return int(st.LastSeq - st.Msgs), nil
}

// counters are the messages written to the job stream (one per job) and
// to the records' bucket (KV revisions), and the consumer's deliveries
// and acknowledgements.
func (f *ferryInstance) counters(ctx context.Context) (map[string]float64, error) {
	js, err := f.streamState(ctx, naming.JobStream(noop.Name))
	if err != nil {
		return nil, err
	}
	// The index's writes are published without waiting for them: count
	// the bucket once its last revision has stopped moving.
	kv, err := f.streamState(ctx, "KV_"+naming.JobBucket)
	for deadline := time.Now().Add(2 * time.Second); err == nil && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		var again jetstream.StreamState
		if again, err = f.streamState(ctx, "KV_"+naming.JobBucket); err == nil && again.LastSeq == kv.LastSeq {
			break
		}
		kv = again
	}
	if err != nil {
		return nil, err
	}
	cons, err := f.js.Consumer(ctx, naming.JobStream(noop.Name), naming.JobConsumer)
	if err != nil {
		return nil, err
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		return nil, err
	}
	return map[string]float64{
		"job stream msgs":  float64(js.LastSeq),
		"KV revisions":     float64(kv.LastSeq),
		"deliveries":       float64(ci.Delivered.Consumer),
		"acks":             float64(ci.AckFloor.Consumer),
		"disk write bytes": float64(procstat.WriteBytes("self")),
	}, nil
}

// verify checks that the job stream is empty and that the sampled jobs'
// records say succeeded.
func (f *ferryInstance) verify(ctx context.Context, total int) error {
	st, err := f.streamState(ctx, naming.JobStream(noop.Name))
	if err != nil {
		return err
	}
	if st.LastSeq != uint64(total) || st.Msgs != 0 {
		return fmt.Errorf("job stream: %d messages stored, %d left; want %d, 0", st.LastSeq, st.Msgs, total)
	}
	f.mu.Lock()
	ids := slices.Clone(f.ids)
	f.mu.Unlock()
	for _, id := range ids {
		rec, err := noop.Get(ctx, f.client, id)
		if err != nil {
			return err
		}
		if rec.State != ferry.JobSucceeded || rec.Attempts != 1 {
			return fmt.Errorf("job %s: %s after %d attempts, want succeeded after 1", id, rec.State, rec.Attempts)
		}
	}
	return nil
}

func (f *ferryInstance) close(ctx context.Context) error {
	err := f.host.Shutdown(ctx)
	os.RemoveAll(f.dir)
	return err
}
