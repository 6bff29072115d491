package ferry_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// NightlyInput and NightlyOutput are the periodic test job's.
type NightlyInput struct {
	Label string `json:"label" minLength:"1"`
}

type NightlyOutput struct {
	OK bool `json:"ok"`
}

var nightlyJob = ferry.Job[NightlyInput, NightlyOutput]{Name: "nightly"}

// periodicRuns records the runs of the periodic test job.
type periodicRuns struct {
	mu    sync.Mutex
	calls map[string]int // job ID → runs
	order []string
}

func (r *periodicRuns) add(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.calls == nil {
		r.calls = map[string]int{}
	}
	if r.calls[id] == 0 {
		r.order = append(r.order, id)
	}
	r.calls[id]++
}

func (r *periodicRuns) snapshot() (map[string]int, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	calls := make(map[string]int, len(r.calls))
	for k, v := range r.calls {
		calls[k] = v
	}
	return calls, append([]string(nil), r.order...)
}

// periodicWorker is a replica of the worker service, with the schedules
// given as name → expression.
func periodicWorker(runs *periodicRuns, handler ferry.JobHandler[NightlyInput, NightlyOutput], schedules map[string]string, opts ...ferry.PeriodicOption) *ferry.Service {
	svc := ferry.MustNew("nightly", "1.0.0", ferry.WithoutHTTP(), quiet)
	if handler == nil {
		handler = func(ctx context.Context, in *NightlyInput, _ *ferry.Progress) (*NightlyOutput, error) {
			runs.add(ferry.JobFromContext(ctx))
			return &NightlyOutput{OK: true}, nil
		}
	}
	ferry.HandleJob(svc, nightlyJob, handler)
	for name, expr := range schedules {
		ferry.Periodic(svc, nightlyJob, name, expr, &NightlyInput{Label: name}, opts...)
	}
	return svc
}

// joinBroker starts a host of svc on the test's broker at url.
func joinBroker(t *testing.T, url string, svc *ferry.Service) *ferrytest.Host {
	t.Helper()
	cfg := ferrytest.Config(t)
	cfg.NATSURL = url
	return ferrytest.StartWith(t, cfg, svc)
}

// records reads the records of the jobs with ids.
func records(t *testing.T, c *ferry.Client, ids []string) []*ferry.JobRecord[NightlyOutput] {
	t.Helper()
	var out []*ferry.JobRecord[NightlyOutput]
	for _, id := range ids {
		rec, err := nightlyJob.Get(context.Background(), c, id)
		if err != nil {
			t.Fatalf("record of %s: %v", id, err)
		}
		out = append(out, rec)
	}
	return out
}

func TestPeriodicRunsOncePerTickAcrossReplicas(t *testing.T) {
	broker, url := startJobBroker(t)
	var runs periodicRuns
	for range 2 {
		joinBroker(t, url, periodicWorker(&runs, nil, map[string]string{"every-second": "* * * * * *"}))
	}
	ferrytest.Eventually(t, func() bool { calls, _ := runs.snapshot(); return len(calls) >= 4 }, "four ticks run")
	calls, ids := runs.snapshot()
	ticks := map[time.Time]string{}
	for _, rec := range records(t, broker.Client, ids) {
		if calls[rec.ID] != 1 {
			t.Errorf("job %s ran %d times", rec.ID, calls[rec.ID])
		}
		if rec.Schedule != "every-second" || rec.Job != "nightly" || rec.RunAt.IsZero() {
			t.Errorf("record %+v: want the schedule's name and the tick's time", rec)
		}
		if other, dup := ticks[rec.RunAt]; dup {
			t.Errorf("the tick at %v ran twice: jobs %s and %s", rec.RunAt, other, rec.ID)
		}
		ticks[rec.RunAt] = rec.ID
	}
}

func TestPeriodicDuplicateTickRunsOnce(t *testing.T) {
	var runs periodicRuns
	svc := periodicWorker(&runs, nil, map[string]string{"yearly": "@yearly"}, ferry.PeriodicAllowOverlap())
	ferrytest.Start(t, svc)
	ctx := context.Background()
	next := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	fired := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	// One tick delivered four times, two of them at once (two brokers).
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if err := ferry.FirePeriodicTick(ctx, svc, "nightly", "yearly", next, fired); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for range 2 {
		if err := ferry.FirePeriodicTick(ctx, svc, "nightly", "yearly", next, fired); err != nil {
			t.Fatal(err)
		}
	}
	// Then the next tick: once it ran, a second run of the first would have.
	if err := ferry.FirePeriodicTick(ctx, svc, "nightly", "yearly", next.AddDate(1, 0, 0), next); err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, func() bool { calls, _ := runs.snapshot(); return len(calls) == 2 }, "both ticks run")
	calls, _ := runs.snapshot()
	for id, n := range calls {
		if n != 1 {
			t.Errorf("job %s ran %d times", id, n)
		}
	}
}

func TestPeriodicOverlap(t *testing.T) {
	tests := []struct {
		name  string
		opts  []ferry.PeriodicOption
		allow bool
	}{
		{"skip by default", nil, false},
		{"allowed", []ferry.PeriodicOption{ferry.PeriodicAllowOverlap()}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var runs periodicRuns
			release := make(chan struct{})
			slow := func(ctx context.Context, in *NightlyInput, _ *ferry.Progress) (*NightlyOutput, error) {
				runs.add(ferry.JobFromContext(ctx))
				select {
				case <-release:
				case <-ctx.Done():
				}
				return &NightlyOutput{OK: true}, nil
			}
			ferrytest.Start(t, periodicWorker(&runs, slow, map[string]string{"every-second": "* * * * * *"}, tt.opts...))
			defer close(release)
			ferrytest.Eventually(t, func() bool { calls, _ := runs.snapshot(); return len(calls) >= 1 }, "the first tick runs")
			time.Sleep(3500 * time.Millisecond) // three more ticks while the first run holds on
			calls, _ := runs.snapshot()
			switch {
			case !tt.allow && len(calls) != 1:
				t.Errorf("%d runs started while the first was going; want the ticks skipped", len(calls))
			case tt.allow && len(calls) < 2:
				t.Errorf("%d runs: want the ticks to overlap", len(calls))
			}
		})
	}
}

func TestPeriodicCatchUpAfterDowntime(t *testing.T) {
	skipIfShort(t)
	const catchUp = 2
	broker, url := startJobBroker(t)
	var runs periodicRuns
	worker := func() *ferry.Service {
		return periodicWorker(&runs, nil, map[string]string{"every-second": "* * * * * *"},
			ferry.PeriodicCatchUp(catchUp), ferry.PeriodicAllowOverlap())
	}
	first := joinBroker(t, url, worker())
	ferrytest.Eventually(t, func() bool { calls, _ := runs.snapshot(); return len(calls) >= 1 }, "a tick runs")
	if err := first.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	time.Sleep(6 * time.Second) // the broker fires six ticks no worker takes
	back := time.Now()
	joinBroker(t, url, worker())

	var recs []*ferry.JobRecord[NightlyOutput]
	ferrytest.Eventually(t, func() bool {
		_, ids := runs.snapshot()
		recs = records(t, broker.Client, ids)
		for _, rec := range recs {
			if !rec.RunAt.Before(back.Add(time.Second)) {
				return true
			}
		}
		return false
	}, "a tick after the restart runs")
	missed := 0
	for _, rec := range recs {
		if rec.RunAt.After(down.Add(time.Second)) && rec.RunAt.Before(back) {
			missed++
		}
	}
	t.Logf("%d of the ticks fired while no worker ran (%v) were run", missed, back.Sub(down).Round(time.Second))
	// The latest catchUp missed ticks run (and the one due at the restart).
	if missed < 1 || missed > catchUp+1 {
		t.Errorf("%d of the ticks fired while no worker ran were run; want 1 to %d", missed, catchUp+1)
	}
}

func TestPeriodicScheduleChangedOrRemoved(t *testing.T) {
	broker, url := startJobBroker(t)
	var runs periodicRuns
	// First deployment: two schedules that will not fire during the test.
	old := joinBroker(t, url, periodicWorker(&runs, nil, map[string]string{"report": "@yearly", "cleanup": "0 0 3 * * *"}))
	if err := old.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Second: "report" every second, "cleanup" gone.
	joinBroker(t, url, periodicWorker(&runs, nil, map[string]string{"report": "* * * * * *"}))
	ferrytest.Eventually(t, func() bool { calls, _ := runs.snapshot(); return len(calls) >= 2 }, "the changed schedule fires")

	nc, err := nats.Connect(broker.BrokerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	stream, err := js.Stream(ctx, "ferryjob-nightly")
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter("ferry.job.nightly.cron.*"))
	if err != nil {
		t.Fatal(err)
	}
	if got := info.State.Subjects; len(got) != 1 || got["ferry.job.nightly.cron.report"] != 1 {
		t.Errorf("schedules in the stream %v; want the one of report only", got)
	}
	msg, err := stream.GetLastMsgForSubject(ctx, "ferry.job.nightly.cron.report")
	if err != nil || msg.Header.Get("Nats-Schedule") != "* * * * * *" {
		t.Errorf("report's schedule %v, %v: want the new expression", msg, err)
	}
	_, ids := runs.snapshot()
	for _, rec := range records(t, broker.Client, ids) {
		if rec.Schedule != "report" {
			t.Errorf("run %s of schedule %q; want report's only", rec.ID, rec.Schedule)
		}
	}
}

func TestPeriodicSetupMistakesPanic(t *testing.T) {
	other := ferry.Job[NightlyInput, NightlyOutput]{Name: "other"}
	in := &NightlyInput{Label: "x"}
	tests := []struct {
		name string
		bind func(svc *ferry.Service)
		want []string
	}{
		{"bad expression", func(svc *ferry.Service) { ferry.Periodic(svc, nightlyJob, "n", "0 0 25 * * *", in) },
			[]string{"nightly/n", `cron expression "0 0 25 * * *": hours field "25": 25 is above the maximum 23`}},
		{"five fields", func(svc *ferry.Service) { ferry.Periodic(svc, nightlyJob, "n", "0 2 * * *", in) },
			[]string{"want 6: seconds minutes hours"}},
		{"never fires", func(svc *ferry.Service) { ferry.Periodic(svc, nightlyJob, "n", "0 0 0 31 2 *", in) },
			[]string{"never fires"}},
		{"bad schedule name", func(svc *ferry.Service) { ferry.Periodic(svc, nightlyJob, "a.b", "@daily", in) },
			[]string{"schedule name"}},
		{"unknown time zone", func(svc *ferry.Service) {
			ferry.Periodic(svc, nightlyJob, "n", "@daily", in, ferry.PeriodicTimeZone("Mars/Olympus"))
		}, []string{`PeriodicTimeZone("Mars/Olympus")`}},
		{"@every with a time zone", func(svc *ferry.Service) {
			ferry.Periodic(svc, nightlyJob, "n", "@every 1m", in, ferry.PeriodicTimeZone("UTC"))
		}, []string{"no time zone"}},
		{"negative catch-up", func(svc *ferry.Service) {
			ferry.Periodic(svc, nightlyJob, "n", "@daily", in, ferry.PeriodicCatchUp(-1))
		}, []string{"PeriodicCatchUp(-1)"}},
		{"input breaks the schema", func(svc *ferry.Service) { ferry.Periodic(svc, nightlyJob, "n", "@daily", &NightlyInput{}) },
			[]string{"breaks the schema"}},
		{"job not run by the service", func(svc *ferry.Service) { ferry.Periodic(svc, other, "n", "@daily", in) },
			[]string{"call HandleJob first"}},
		{"declared twice", func(svc *ferry.Service) {
			ferry.Periodic(svc, nightlyJob, "n", "@daily", in)
			ferry.Periodic(svc, nightlyJob, "n", "@hourly", in)
		}, []string{"already declared"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := periodicWorker(nil, func(context.Context, *NightlyInput, *ferry.Progress) (*NightlyOutput, error) { return nil, nil }, nil)
			mustPanic(t, func() { tt.bind(svc) }, tt.want...)
		})
	}
}

// TestPeriodicExpressionsTheServerAccepts: every expression the
// declaration accepts, the broker accepts too.
func TestPeriodicExpressionsTheServerAccepts(t *testing.T) {
	broker, _ := startJobBroker(t)
	nc, err := nats.Connect(broker.BrokerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "cron", Subjects: []string{"cron.>"}, AllowMsgSchedules: true}); err != nil {
		t.Fatal(err)
	}
	parts := [6][]string{
		{"0", "*", "*/5", "10-20", "1,2,3", "59", "60", "5/15"},
		{"0", "*", "?", "30", "0-59/20"},
		{"0", "*", "2", "9-17", "23", "24", "*/0"},
		{"*", "1", "15,31", "29", "0", "1-31/7"},
		{"*", "2", "jan", "Feb-apr", "12", "13", "*/3"},
		{"*", "0", "mon-fri", "sat,SUN", "6", "7", "?"},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	accepted := 0
	for i := range 150 {
		var f []string
		for _, p := range parts {
			f = append(f, p[rng.IntN(len(p))])
		}
		expr := strings.Join(f, " ")
		declared := declares(expr)
		m := nats.NewMsg(fmt.Sprintf("cron.s%d", i))
		_, err := js.PublishMsg(ctx, m, jetstream.WithScheduleCron(expr), jetstream.WithScheduleTarget("cron.target"))
		if declared && err != nil {
			t.Errorf("%q: declared, but the broker refuses it: %v", expr, err)
		}
		if declared {
			accepted++
		}
	}
	if accepted < 20 {
		t.Errorf("only %d valid expressions tried", accepted)
	}
}

// declares reports whether Periodic accepts expr.
func declares(expr string) (ok bool) {
	defer func() { ok = recover() == nil }()
	svc := periodicWorker(nil, func(context.Context, *NightlyInput, *ferry.Progress) (*NightlyOutput, error) { return nil, nil }, nil)
	ferry.Periodic(svc, nightlyJob, "s", expr, &NightlyInput{Label: "x"})
	return true
}
