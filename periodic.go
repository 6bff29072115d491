package ferry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry/internal/broker"
	"github.com/ferrygo/ferry/internal/cron"
	"github.com/ferrygo/ferry/internal/jobs"
	"github.com/ferrygo/ferry/internal/naming"
)

// DefaultPeriodicCatchUp is how many ticks of a schedule missed while no
// worker ran are run when one is back ([PeriodicCatchUp]).
const DefaultPeriodicCatchUp = 1

// PeriodicOption adjusts a periodic job ([Periodic]).
type PeriodicOption func(*periodicOptions)

type periodicOptions struct {
	timeZone     string
	allowOverlap bool
	catchUp      int
}

// PeriodicTimeZone makes the cron expression read in the IANA time zone
// name ("Europe/Paris"; default UTC). It applies to the 6-field form and
// the @daily-like forms, not to @every.
func PeriodicTimeZone(name string) PeriodicOption {
	return func(o *periodicOptions) { o.timeZone = name }
}

// PeriodicAllowOverlap lets a tick start a run while the schedule's
// previous run has not finished (by default the tick is skipped).
func PeriodicAllowOverlap() PeriodicOption {
	return func(o *periodicOptions) { o.allowOverlap = true }
}

// PeriodicCatchUp sets how many ticks missed while no worker ran (the
// broker kept firing them) run when a worker is back: the latest n; the
// older ones are skipped and logged (default 1; 0 runs none). Catch-up
// runs are subject to the overlap policy like any other.
func PeriodicCatchUp(n int) PeriodicOption {
	return func(o *periodicOptions) { o.catchUp = n }
}

// periodic is one declared schedule of a job kind.
type periodic struct {
	job, name, expr, timeZone string
	sched                     *cron.Schedule
	input                     []byte
	allowOverlap              bool
	catchUp                   int
}

// Periodic runs job on svc's workers on a schedule: each time the cron
// expression fires, one run of job with input in starts, once across
// all of svc's replicas. name names the schedule (^[A-Za-z0-9_-]+$): a
// job kind may have several, each with its own input.
//
// expr is a 6-field cron expression — seconds minutes hours day-of-month
// month day-of-week, each "*", a number, a name (jan, mon), a range, a
// list or a /step: "0 0 2 * * *" is 02:00 every day — or one of @yearly,
// @monthly, @weekly, @daily, @hourly, or "@every <duration>" (at least
// 1s).
//
// The broker keeps the schedule (a JetStream message schedule in the
// job's stream) and fires it even while no replica runs; svc's replicas
// write it when they start, replacing one declared differently before,
// and remove the job's schedules no longer declared. Each tick starts a
// job whose ID is derived from the tick, with an ordinary record that
// names the schedule, unless the schedule's previous run is still going
// ([PeriodicAllowOverlap]) or the tick was missed while every worker was
// down and is older than the ticks caught up ([PeriodicCatchUp]).
//
// Periodic jobs need nats-server 2.14 or newer. Periodic panics, with a
// message prefixed "ferry:", on an invalid schedule name or expression,
// an unknown time zone, an input that breaks the job's schema, a job
// that svc does not run (call [HandleJob] first), a schedule declared
// twice, or a started service.
func Periodic[In, Out any](svc *Service, job Job[In, Out], name, expr string, in *In, opts ...PeriodicOption) {
	fail := func(err error) {
		panic(fmt.Sprintf("ferry: Periodic %s/%s on service %s: %v", job.Name, name, svc.name, err))
	}
	if err := job.check(); err != nil {
		fail(err)
	}
	if err := naming.CheckScheduleName(name); err != nil {
		fail(err)
	}
	o := periodicOptions{catchUp: DefaultPeriodicCatchUp}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.catchUp < 0 {
		fail(fmt.Errorf("PeriodicCatchUp(%d): must not be negative", o.catchUp))
	}
	var loc *time.Location
	if o.timeZone != "" {
		var err error
		if loc, err = loadTimeZone(o.timeZone); err != nil {
			fail(err)
		}
	}
	sched, err := cron.Parse(expr, loc)
	if err != nil {
		fail(err)
	}
	if in == nil {
		in = new(In)
	}
	data, err := json.Marshal(in)
	if err != nil {
		fail(err)
	}
	if err := publishValidator(job.decl())(data); err != nil {
		fail(job.invalid(err))
	}
	svc.addPeriodic(&periodic{job: job.Name, name: name, expr: expr, timeZone: o.timeZone, sched: sched, input: data,
		allowOverlap: o.allowOverlap, catchUp: o.catchUp})
}

// loadTimeZone loads an IANA time zone the server can load too ("Local"
// would be the server's).
func loadTimeZone(name string) (*time.Location, error) {
	if name == "Local" {
		return nil, errors.New(`PeriodicTimeZone("Local"): name the zone (the broker's local zone may differ)`)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("PeriodicTimeZone(%q): %w", name, err)
	}
	return loc, nil
}

// addPeriodic records a schedule of a job kind the service runs.
func (s *Service) addPeriodic(p *periodic) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fail := func(what string) {
		panic(fmt.Sprintf("ferry: Periodic %s/%s on service %s: %s", p.job, p.name, s.name, what))
	}
	if s.started {
		fail(errAlreadyStarted.Error())
	}
	runs := false
	for _, j := range s.jobs {
		runs = runs || j.jobName() == p.job
	}
	if !runs {
		fail("the service does not run the job: call HandleJob first")
	}
	for _, other := range s.periodics {
		if other.job == p.job && other.name == p.name {
			fail("the schedule is already declared on this service")
		}
	}
	s.periodics = append(s.periodics, p)
}

// errCronServerTooOld is the error against a server without cron
// schedules, when periodic jobs are declared.
func errCronServerTooOld(version string) error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "broker_too_old",
		Detail: fmt.Sprintf("periodic jobs need nats-server %s or newer (cron schedules); the broker is %s", broker.CronMinServerVersion, version)}
}

// checkCronServer refuses a server too old for the periodic jobs declared.
func checkCronServer(version string, declared int) error {
	if declared > 0 && !broker.AtLeast(version, broker.CronMinServerVersion) {
		return errCronServerTooOld(version)
	}
	return nil
}

// periodicRunner keeps the schedules of a worker service's job kinds: a
// component of the host that starts after the service's job workers. At
// start it writes the declared schedules and removes the others; then it
// turns each tick into a run (a job message and its record) on one
// replica, deciding the overlap and catch-up policies there.
type periodicRunner struct {
	svc      *Service
	kinds    []string                        // the job kinds the service runs
	declared map[string]map[string]*periodic // job → schedule name → its declaration
	store    *jobs.Store
	js       jetstream.JetStream
	ctx      context.Context // ends at Close: conversions in flight give up
	cancel   context.CancelFunc
	consumes []jetstream.ConsumeContext

	mu      sync.Mutex
	skipped map[string]*skipNote // job/schedule → ticks skipped since last logged
}

// skipNote counts the skipped ticks of a schedule between two log lines.
type skipNote struct {
	n      int
	logged time.Time
}

// newPeriodicRunner returns the component of svc's schedules, or nil if
// svc runs no jobs.
func newPeriodicRunner(svc *Service) *periodicRunner {
	svc.mu.Lock()
	defer svc.mu.Unlock()
	if len(svc.jobs) == 0 {
		return nil
	}
	r := &periodicRunner{svc: svc, declared: map[string]map[string]*periodic{}, skipped: map[string]*skipNote{}}
	for _, j := range svc.jobs {
		r.kinds = append(r.kinds, j.jobName())
	}
	for _, p := range svc.periodics {
		if r.declared[p.job] == nil {
			r.declared[p.job] = map[string]*periodic{}
		}
		r.declared[p.job][p.name] = p
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// Name implements lifecycle.Component.
func (r *periodicRunner) Name() string { return "periodic jobs of service " + r.svc.name }

// Start implements lifecycle.Component.
func (r *periodicRunner) Start(ctx context.Context) error {
	rt := r.svc.runtime()
	if err := checkCronServer(rt.client.nc.ConnectedServerVersion(), len(r.svc.periodics)); err != nil {
		return fmt.Errorf("ferry: %s: %w", r.Name(), err)
	}
	store, err := rt.client.jobStore(ctx)
	if err != nil {
		return fmt.Errorf("ferry: %s: %w", r.Name(), err)
	}
	r.store, r.js = store, rt.js
	for _, kind := range r.kinds {
		if err := r.startKind(ctx, kind); err != nil {
			r.stopConsuming()
			return fmt.Errorf("ferry: %s: job %s: %w", r.Name(), kind, err)
		}
	}
	return nil
}

// startKind removes the kind's schedules no longer declared, writes the
// declared ones, and consumes its ticks.
func (r *periodicRunner) startKind(ctx context.Context, kind string) error {
	stream, err := r.js.Stream(ctx, naming.JobStream(kind))
	if err != nil {
		return err
	}
	declared := r.declared[kind]
	prefix := naming.JobCronSubject(kind, "")
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(prefix+"*"))
	if err != nil {
		return err
	}
	for subject := range info.State.Subjects {
		name := strings.TrimPrefix(subject, prefix)
		if declared[name] != nil {
			continue
		}
		if err := stream.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
			return fmt.Errorf("remove schedule %s: %w", name, err)
		}
		if err := r.store.ForgetSchedule(ctx, kind, name); err != nil {
			return fmt.Errorf("remove schedule %s: %w", name, err)
		}
		r.svc.logger.Info("ferry: periodic job schedule removed: no longer declared", slog.String("job", kind), slog.String("schedule", name))
	}
	if len(declared) == 0 {
		// Ticks left by removed schedules: no one turns them into runs.
		if err := stream.Purge(ctx, jetstream.WithPurgeSubject(naming.JobTickSubject(kind))); err != nil {
			return fmt.Errorf("purge ticks: %w", err)
		}
		return nil
	}
	for _, p := range declared {
		if err := r.writeSchedule(ctx, stream, p); err != nil {
			return fmt.Errorf("schedule %s: %w", p.name, err)
		}
	}
	cons, err := r.js.CreateOrUpdateConsumer(ctx, naming.JobStream(kind), jetstream.ConsumerConfig{
		Durable:       naming.JobTickConsumer,
		Description:   "Ferry periodic job " + kind + ": ticks, turned into runs by service " + r.svc.name,
		FilterSubject: naming.JobTickSubject(kind),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    -1,
		MaxAckPending: 64,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		Metadata:      map[string]string{"ferry_service": r.svc.name, "ferry_job": kind},
	})
	if err != nil {
		return err
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) { r.onTick(kind, msg) }, jetstream.PullMaxMessages(16))
	if err != nil {
		return err
	}
	r.consumes = append(r.consumes, cc)
	return nil
}

// writeSchedule writes a declared schedule, unless the stream holds it
// as declared: rewriting it would restart its timer, and could lose a
// tick due at that very moment.
func (r *periodicRunner) writeSchedule(ctx context.Context, stream jetstream.Stream, p *periodic) error {
	subject := naming.JobCronSubject(p.job, p.name)
	target := naming.JobTickSubject(p.job)
	have, err := stream.GetLastMsgForSubject(ctx, subject)
	switch {
	case err == nil:
		h := have.Header
		if h.Get(jetstream.ScheduleHeader) == p.expr && h.Get(jetstream.ScheduleTimeZoneHeader) == p.timeZone &&
			h.Get(jetstream.ScheduleTargetHeader) == target && h.Get(naming.HeaderJobSchedule) == p.name &&
			h.Get(naming.HeaderJobCron) == p.expr && bytes.Equal(have.Data, p.input) {
			return nil
		}
	case !errors.Is(err, jetstream.ErrMsgNotFound):
		return err
	}
	msg := nats.NewMsg(subject)
	msg.Data = p.input
	msg.Header.Set(naming.HeaderJobSchedule, p.name)
	msg.Header.Set(naming.HeaderJobCron, p.expr)
	msg.Header.Set("Content-Type", "application/json")
	opts := []jetstream.PublishOpt{jetstream.WithExpectStream(naming.JobStream(p.job)),
		jetstream.WithScheduleCron(p.expr), jetstream.WithScheduleTarget(target)}
	if p.timeZone != "" {
		opts = append(opts, jetstream.WithScheduleTimeZone(p.timeZone))
	}
	// A schedule replaces the one before on its subject (the server rolls
	// the subject up).
	if _, err := r.js.PublishMsg(ctx, msg, opts...); err != nil {
		return err
	}
	r.svc.logger.Info("ferry: periodic job scheduled", slog.String("job", p.job), slog.String("schedule", p.name),
		slog.String("cron", p.expr), slog.String("time_zone", p.timeZone))
	return nil
}

// onTick turns one tick into a run, or skips it; a tick that could not be
// handled (the broker did not answer) comes back after a second.
func (r *periodicRunner) onTick(kind string, msg jetstream.Msg) {
	ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
	defer cancel()
	fired := time.Now()
	if md, err := msg.Metadata(); err == nil {
		fired = md.Timestamp
	}
	if err := r.tick(ctx, kind, msg.Headers(), msg.Data(), fired, time.Now()); err != nil {
		r.svc.logger.Warn("ferry: periodic job tick not handled; retrying", slog.String("job", kind),
			slog.String("schedule", msg.Headers().Get(naming.HeaderJobSchedule)), slog.String("err", err.Error()))
		_ = msg.NakWithDelay(time.Second)
		return
	}
	_ = msg.Ack()
}

// tick decides what a tick does: nothing if it was handled before (fired
// twice, or delivered again), if its schedule is no longer declared, if
// newer missed ticks fill the catch-up, or if the previous run is still
// going (unless overlaps are allowed); otherwise it starts a run.
func (r *periodicRunner) tick(ctx context.Context, kind string, h nats.Header, data []byte, fired, now time.Time) error {
	name := h.Get(naming.HeaderJobSchedule)
	p := r.declared[kind][name]
	if p == nil {
		return nil // a tick of a removed schedule
	}
	next, err := time.Parse(time.RFC3339Nano, h.Get(jetstream.ScheduleNextHeader))
	if err != nil {
		r.svc.logger.Warn("ferry: periodic job tick without its next time; dropped", slog.String("job", kind), slog.String("schedule", name))
		return nil
	}
	// The tick's expression: a tick fired before the schedule was changed
	// is counted by its own.
	expr, sched := h.Get(naming.HeaderJobCron), p.sched
	if expr != p.expr {
		var loc *time.Location
		if p.timeZone != "" {
			loc, _ = loadTimeZone(p.timeZone)
		}
		if s, err := cron.Parse(expr, loc); err == nil {
			sched = s
		}
	}
	// The schedule's next firing identifies the tick: two copies of one
	// tick share it, two ticks never do.
	id := jobs.TickID(kind, name, expr, next.UTC().Format(time.RFC3339Nano))
	switch _, err := r.store.Get(ctx, id); {
	case err == nil:
		return nil
	case !errors.Is(err, jobs.ErrNotFound):
		return err
	}
	// Missed: ticks came due after this one. The latest catchUp of them run.
	if newer := sched.CountFrom(next, now, p.catchUp+1); newer > p.catchUp {
		r.noteSkipped(p, fired, "missed while no worker ran; newer ticks are caught up (PeriodicCatchUp)")
		return nil
	}
	for range 8 {
		last, rev, err := r.store.LastRun(ctx, kind, name)
		if err != nil {
			return err
		}
		if last == id {
			return r.start(ctx, p, id, data, fired) // recorded by another copy or an earlier try
		}
		if last != "" && !p.allowOverlap {
			rec, err := r.store.Get(ctx, last)
			switch {
			case err == nil && !rec.State.Final():
				r.noteSkipped(p, fired, "the previous run has not finished (PeriodicAllowOverlap)")
				return nil
			case err != nil && !errors.Is(err, jobs.ErrNotFound):
				return err
			}
		}
		err = r.store.SetLastRun(ctx, kind, name, id, rev)
		if err == nil {
			return r.start(ctx, p, id, data, fired)
		}
		if !jobs.Conflict(err) {
			return err
		}
	}
	return errors.New("the schedule's last run changed 8 times during one tick")
}

// start stores a tick's run like an enqueue: the job message (its ID as
// the message ID, so the broker keeps one of two copies), then its
// record, which names the schedule.
func (r *periodicRunner) start(ctx context.Context, p *periodic, id string, data []byte, fired time.Time) error {
	now := time.Now().UTC()
	at := fired.UTC().Truncate(time.Second)
	msg := nats.NewMsg(naming.JobRunSubject(p.job))
	msg.Data = data
	msg.Header.Set(naming.HeaderMsgID, id)
	msg.Header.Set(naming.HeaderJobID, id)
	msg.Header.Set(naming.HeaderJobEnqueued, now.Format(time.RFC3339Nano))
	msg.Header.Set(naming.HeaderJobRunAt, at.Format(time.RFC3339))
	msg.Header.Set(naming.HeaderJobSchedule, p.name)
	msg.Header.Set("Content-Type", "application/json")
	if _, err := r.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(naming.JobStream(p.job))); err != nil {
		return err
	}
	rec := &jobs.Record{ID: id, Job: p.job, State: jobs.Queued, Schedule: p.name, EnqueuedAt: now, RunAt: at}
	if err := r.store.Create(ctx, rec); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return err
	}
	return nil
}

// periodicSkipLogEvery bounds the log lines of one schedule's skipped
// ticks (a per-second schedule back from an hour's outage skips 3600).
const periodicSkipLogEvery = 10 * time.Second

// noteSkipped logs a skipped tick, at most one line per schedule every
// periodicSkipLogEvery, counting those in between.
func (r *periodicRunner) noteSkipped(p *periodic, fired time.Time, why string) {
	key := p.job + "/" + p.name
	r.mu.Lock()
	n := r.skipped[key]
	if n == nil {
		n = &skipNote{}
		r.skipped[key] = n
	}
	n.n++
	if time.Since(n.logged) < periodicSkipLogEvery {
		r.mu.Unlock()
		return
	}
	count := n.n
	n.n, n.logged = 0, time.Now()
	r.mu.Unlock()
	r.svc.logger.Info("ferry: periodic job tick skipped: "+why, slog.String("job", p.job), slog.String("schedule", p.name),
		slog.Time("tick", fired.UTC()), slog.Int("skipped", count))
}

// stopConsuming stops taking ticks.
func (r *periodicRunner) stopConsuming() {
	for _, cc := range r.consumes {
		cc.Drain()
	}
}

// StopIntake implements lifecycle.Component.
func (r *periodicRunner) StopIntake() { r.stopConsuming() }

// Drain implements lifecycle.Component: it waits for the ticks being
// turned into runs.
func (r *periodicRunner) Drain(ctx context.Context) error {
	for _, cc := range r.consumes {
		select {
		case <-cc.Closed():
		case <-ctx.Done():
			r.cancel()
			return fmt.Errorf("ferry: %s: ticks still in flight: %w", r.Name(), ctx.Err())
		}
	}
	return nil
}

// Close implements lifecycle.Component.
func (r *periodicRunner) Close(context.Context) error {
	r.cancel()
	for _, cc := range r.consumes {
		cc.Stop()
	}
	return nil
}
