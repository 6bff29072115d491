package main

import (
	"context"
	"fmt"
	"github.com/ferrygo/ferry/bench/internal/procstat"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/internal/naming"
)

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

// three is the workflow: three steps, each returning in.N+i.
var three = ferry.Workflow[input, output]{Name: "three", Description: "Three trivial steps."}

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
	ids    []string // a sample of the runs, checked by verify
}

func startFerry(m syncMode) func(context.Context, *options, *sink) (instance, error) {
	return func(ctx context.Context, o *options, s *sink) (instance, error) {
		dir, err := os.MkdirTemp(o.dir, "ferry-bench-workflows-*")
		if err != nil {
			return nil, err
		}
		cfg := ferry.Config{NATSEmbed: true, DataDir: dir, SyncAlways: m.Always, SyncInterval: m.Interval, LogLevel: slog.LevelWarn}
		svc, err := ferry.New("bench", "1.0.0", ferry.WithConfig(cfg), ferry.WithLogger(logger()), ferry.WithoutHTTP())
		if err != nil {
			return nil, err
		}
		ferry.HandleWorkflow(svc, three, func(ctx ferry.WorkflowContext, in *input) (*output, error) {
			var sum int
			for i, name := range []string{"one", "two", "three"} {
				v, err := ferry.Step(ctx, name, func(context.Context) (int, error) { return s.step(in.N, i+1), nil })
				if err != nil {
					return nil, err
				}
				sum += v
			}
			return &output{Sum: sum}, nil
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

func (f *ferryInstance) start(ctx context.Context, n int) (func(context.Context) (int, error), error) {
	id, err := three.Start(ctx, f.client, &input{N: n})
	if err != nil {
		return nil, err
	}
	if n%97 == 0 {
		f.mu.Lock()
		f.ids = append(f.ids, id)
		f.mu.Unlock()
	}
	return func(ctx context.Context) (int, error) {
		rec, err := three.Wait(ctx, f.client, id)
		if err != nil {
			return 0, err
		}
		if rec.State != ferry.JobSucceeded || rec.Result == nil {
			return 0, fmt.Errorf("run %s: %s", id, rec.State)
		}
		return rec.Result.Sum, nil
	}, nil
}

// messages is the messages each stream has stored (its last sequence).
func (f *ferryInstance) messages(ctx context.Context) (map[string]float64, error) {
	out := map[string]float64{}
	names := f.js.StreamNames(ctx)
	for name := range names.Name() {
		s, err := f.js.Stream(ctx, name)
		if err != nil {
			return nil, err
		}
		si, err := s.Info(ctx)
		if err != nil {
			return nil, err
		}
		out[name] = float64(si.State.LastSeq)
	}
	return out, names.Err()
}

// counters are the messages stored in each stream (a KV bucket's stream
// counts its revisions and purges), all of them, and the bytes this
// process caused to be written to disk.
func (f *ferryInstance) counters(ctx context.Context) (map[string]float64, error) {
	// Some writes are published without waiting for them: count once the
	// streams stop moving.
	msgs, err := f.messages(ctx)
	for deadline := time.Now().Add(2 * time.Second); err == nil && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		var again map[string]float64
		if again, err = f.messages(ctx); err == nil && maps.Equal(again, msgs) {
			break
		}
		msgs = again
	}
	if err != nil {
		return nil, err
	}
	out := map[string]float64{"disk write bytes": float64(procstat.WriteBytes("self"))}
	var total float64
	for name, v := range msgs {
		out["stream msgs "+name] = v
		total += v
	}
	out["stream msgs, all"] = total
	return out, nil
}

// verify checks that the workflow's job stream holds total runs, all
// acknowledged (the stream is a work queue: it is empty), and that the
// sampled runs' records say succeeded after one attempt, with 3 steps.
func (f *ferryInstance) verify(ctx context.Context, total int) error {
	s, err := f.js.Stream(ctx, naming.JobStream(three.Name))
	if err != nil {
		return err
	}
	si, err := s.Info(ctx)
	if err != nil {
		return err
	}
	if si.State.LastSeq != uint64(total) || si.State.Msgs != 0 {
		return fmt.Errorf("job stream: %d messages stored, %d left; want %d, 0", si.State.LastSeq, si.State.Msgs, total)
	}
	f.mu.Lock()
	ids := slices.Clone(f.ids)
	f.mu.Unlock()
	for _, id := range ids {
		rec, err := three.Get(ctx, f.client, id)
		if err != nil {
			return err
		}
		if rec.State != ferry.JobSucceeded || rec.Attempts != 1 || rec.Steps != steps {
			return fmt.Errorf("run %s: %s after %d attempts, %d steps; want succeeded after 1, %d steps", id, rec.State, rec.Attempts, rec.Steps, steps)
		}
	}
	return nil
}

func (f *ferryInstance) close(ctx context.Context) error {
	err := f.host.Shutdown(ctx)
	os.RemoveAll(f.dir)
	return err
}
