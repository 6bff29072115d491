package ferry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry/internal/broker"
	"github.com/ferrygo/ferry/internal/jobs"
	"github.com/ferrygo/ferry/internal/lifecycle"
	"github.com/ferrygo/ferry/internal/naming"
	"github.com/ferrygo/ferry/internal/natsproto"
	"github.com/ferrygo/ferry/internal/telemetry"
	"github.com/ferrygo/ferry/internal/worker"
)

// Defaults of a job kind's worker; each has an option.
const (
	DefaultJobConcurrency = 16
	DefaultJobMaxAttempts = 10
	DefaultJobTimeout     = 30 * time.Minute
	DefaultJobAckWait     = 30 * time.Second
	DefaultJobRetention   = 7 * 24 * time.Hour
)

// minJobRetention is the least [JobRetention].
const minJobRetention = time.Minute

// jobCancelPoll is how often a running job's record is read for a cancel
// whose notice did not arrive (the replica was disconnected when it was
// sent).
const jobCancelPoll = 5 * time.Second

// JobOption adjusts a job kind's worker ([HandleJob]).
type JobOption func(*jobOptions)

type jobOptions struct {
	concurrency            int
	maxAttempts            int
	timeout, ackWait       time.Duration
	backoffInit, backoffMx time.Duration
	retention              time.Duration
}

func defaultJobOptions() jobOptions {
	return jobOptions{concurrency: DefaultJobConcurrency, maxAttempts: DefaultJobMaxAttempts, timeout: DefaultJobTimeout,
		ackWait: DefaultJobAckWait, backoffInit: DefaultBackoffInitial, backoffMx: DefaultBackoffMax, retention: DefaultJobRetention}
}

func (o jobOptions) check() error {
	switch {
	case o.concurrency < 1:
		return fmt.Errorf("JobConcurrency(%d): must be at least 1", o.concurrency)
	case o.maxAttempts < 1:
		return fmt.Errorf("JobMaxAttempts(%d): must be at least 1", o.maxAttempts)
	case o.timeout <= 0:
		return fmt.Errorf("JobTimeout(%v): must be positive", o.timeout)
	case o.ackWait < time.Second:
		return fmt.Errorf("JobAckWait(%v): must be at least 1s", o.ackWait)
	case o.backoffInit <= 0 || o.backoffMx < o.backoffInit || o.backoffMx > maxBackoff:
		return fmt.Errorf("JobBackoff(%v, %v): the initial delay must be positive, and the maximum at least the initial and at most %v",
			o.backoffInit, o.backoffMx, maxBackoff)
	case o.retention < minJobRetention:
		return fmt.Errorf("JobRetention(%v): must be at least 1m", o.retention)
	}
	return nil
}

// JobConcurrency sets how many jobs of the kind one replica runs at once
// at each of the high and normal priorities, and a quarter of it (at least
// one) at low priority (default 16: 16 + 16 + 4 slots); two replicas run
// twice as many. Each priority's slots are its own ([JobPriority]).
func JobConcurrency(n int) JobOption { return func(o *jobOptions) { o.concurrency = n } }

// JobMaxAttempts sets how many times the handler may run for one job
// before it fails and is dead-lettered (default 10), unless the job was
// enqueued with its own [EnqueueMaxAttempts].
func JobMaxAttempts(n int) JobOption { return func(o *jobOptions) { o.maxAttempts = n } }

// JobTimeout bounds one run of the handler (default 30m), unless the job
// was enqueued with its own [EnqueueTimeout]: the handler's context ends
// then, and the run counts as failed.
func JobTimeout(d time.Duration) JobOption { return func(o *jobOptions) { o.timeout = d } }

// JobAckWait sets how long a run may go without word from its replica
// before the job is given to another (default 30s): Ferry reports
// progress every third of it while the handler runs, so only a replica
// that died or hung loses its jobs.
func JobAckWait(d time.Duration) JobOption { return func(o *jobOptions) { o.ackWait = d } }

// JobBackoff sets the delay before a failed job runs again: initial,
// doubling with each attempt up to max (at most 24h), with ±20% jitter
// (defaults 1s and 5m).
func JobBackoff(initial, max time.Duration) JobOption {
	return func(o *jobOptions) { o.backoffInit, o.backoffMx = initial, max }
}

// JobRetention sets how long a finished job's record is kept (default 7
// days, at least 1m); then it is removed and [Job.Get] reports it not
// found.
func JobRetention(d time.Duration) JobOption { return func(o *jobOptions) { o.retention = d } }

// JobHandler runs one job: it gets the job's input and a [Progress] to
// report on, and returns the job's output. Returning an error fails the
// run: the job runs again after a backoff, up to its maximum attempts,
// unless [IsPermanent] holds for the error, which fails the job at once.
// A handler must return when its context ends (the job was cancelled,
// timed out, or the replica is shutting down).
type JobHandler[In, Out any] func(ctx context.Context, in *In, progress *Progress) (*Out, error)

// JobFromContext returns the ID of the job being run, or "" outside a job
// handler.
func JobFromContext(ctx context.Context) string {
	id, _ := ctx.Value(jobKey{}).(string)
	return id
}

type jobKey struct{}

// HandleJob makes svc a worker of job: each replica of svc runs up to
// [JobConcurrency] of its jobs at once, through the service's middleware
// chain (the [Request]'s Kind is KindJob and its Name the job's name).
// svc owns the job's stream and creates it when its host starts.
//
// HandleJob panics, with a message prefixed "ferry:", on an invalid job
// name, a nil handler, options that cannot work, a job kind bound twice
// on svc, or a started service.
func HandleJob[In, Out any](svc *Service, job Job[In, Out], handler JobHandler[In, Out], opts ...JobOption) {
	if err := job.check(); err != nil {
		panic(fmt.Sprintf("ferry: HandleJob on service %s: %v", svc.name, err))
	}
	if handler == nil {
		panic(fmt.Sprintf("ferry: HandleJob %s on service %s: nil handler", job.Name, svc.name))
	}
	o := defaultJobOptions()
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if err := o.check(); err != nil {
		panic(fmt.Sprintf("ferry: HandleJob %s on service %s: %v", job.Name, svc.name, err))
	}
	r := &jobRunner[In, Out]{svc: svc, job: job, opts: o, handler: handler, running: map[string]context.CancelCauseFunc{}}
	r.decode = payloadDecoder[In](newMessageSchemas(), job.decl())
	svc.addJob(r)
}

// jobWorker is a job kind's worker without its type parameters, as a host
// runs it: a component of the host's lifecycle.
type jobWorker interface {
	lifecycle.Component
	jobName() string
	docTopic() topicDecl
}

// jobRunner runs one job kind on the durable worker (internal/worker): a
// durable pull consumer on the kind's stream shared by the service's
// replicas. Its own policies: the record moves by compare-and-set
// (queued → running → succeeded, failed or cancelled), so a cancelled job
// never starts and "cancelled" and "succeeded" cannot both win; a cancel
// reaches the replica running the job through a notice and, failing that,
// through the record, read every few seconds.
type jobRunner[In, Out any] struct {
	svc     *Service
	job     Job[In, Out]
	opts    jobOptions
	handler JobHandler[In, Out]
	decode  func([]byte, *In) error

	store      *jobs.Store
	js         jetstream.JetStream
	retryDelay func(n uint64) time.Duration // the backoff, scaled by the host's retry scale
	lanes      []*worker.Worker             // one per priority, each its own consumer and slots
	notice     *nats.Subscription           // cancel notices for this kind

	mu      sync.Mutex
	running map[string]context.CancelCauseFunc // job ID → cancel its run, on this replica
}

var _ jobWorker = (*jobRunner[struct{}, struct{}])(nil)

func (r *jobRunner[In, Out]) jobName() string { return r.job.Name }

func (r *jobRunner[In, Out]) docTopic() topicDecl { return r.job.docTopic() }

// Name implements lifecycle.Component.
func (r *jobRunner[In, Out]) Name() string {
	return "job " + r.job.Name + " of service " + r.svc.name
}

// errJobCancelled is the cause of a run's context cancelled by [Job.Cancel].
var errJobCancelled = errors.New("ferry: job cancelled")

// Start implements lifecycle.Component: it checks the server, subscribes
// to cancel notices, creates or updates the consumer and starts the worker.
func (r *jobRunner[In, Out]) Start(ctx context.Context) error {
	rt := r.svc.runtime()
	if v := rt.client.nc.ConnectedServerVersion(); !broker.AtLeast(v, broker.JobsMinServerVersion) {
		return fmt.Errorf("ferry: %s: %w", r.Name(), errJobsServerTooOld(v))
	}
	store, err := rt.client.jobStore(ctx)
	if err != nil {
		return fmt.Errorf("ferry: %s: %w", r.Name(), err)
	}
	r.store, r.js = store, rt.js
	r.notice, err = rt.client.nc.Subscribe(naming.JobCancelSubject(r.job.Name, "*"), r.cancelNotice)
	if err != nil {
		return fmt.Errorf("ferry: %s: cancel notices: %w", r.Name(), err)
	}
	backoff := r.backoff
	if rt.retryScale > 0 {
		backoff = func(n uint64) time.Duration {
			return time.Duration(min(float64(r.backoff(n))*rt.retryScale, float64(maxBackoff)))
		}
	}
	r.retryDelay = backoff
	for _, p := range priorities {
		w, err := worker.New(worker.Config{
			Name:        r.Name() + " (" + string(p) + " priority)",
			JS:          r.js,
			Stream:      naming.JobStream(r.job.Name),
			Consumer:    r.consumerConfig(p),
			Concurrency: p.concurrency(r.opts.concurrency),
			Timeout:     r.opts.timeout,
			MaxAttempts: r.opts.maxAttempts,
			Backoff:     backoff,
			Limits:      jobLimits,
			Handle:      r.handle,
			Settled:     r.settled,
			DeadLetter:  r.storeDeadLetter,
			State:       rt.state,
			// Its own first token: a subscription's records are under "dlv."
			// (and '~' is not allowed in a key: the records, and the free
			// deliveries of hand-backs with them, would not be written).
			// Stream sequences are unique across the kind's lanes.
			StatePrefix: "dlvjob." + r.job.Name + ".",
			Logger:      r.svc.logger,
		})
		if err == nil {
			err = w.Start(ctx)
		}
		if err != nil {
			_ = r.notice.Unsubscribe()
			for _, started := range r.lanes {
				started.StopIntake()
				_ = started.Close(ctx)
			}
			r.lanes = nil
			return fmt.Errorf("ferry: %s: %w", r.Name(), err)
		}
		r.lanes = append(r.lanes, w)
		if rt.health != nil {
			rt.health.Add(r.Name()+" ("+string(p)+" priority)", w.Health)
		}
	}
	return nil
}

// backoff is the delay before attempt n+1 after n failed ones.
func (r *jobRunner[In, Out]) backoff(n uint64) time.Duration {
	return subscribeOptions{backoffInit: r.opts.backoffInit, backoffMx: r.opts.backoffMx}.backoff(n)
}

// consumerConfig is the durable consumer of one priority's run subject.
func (r *jobRunner[In, Out]) consumerConfig(p JobPriority) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       p.durable(),
		Description:   "Ferry job " + r.job.Name + " at " + string(p) + " priority, run by service " + r.svc.name,
		FilterSubject: p.subject(r.job.Name),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       r.opts.ackWait,
		MaxDeliver:    -1,
		MaxAckPending: max(DefaultMaxAckPending, 4*r.opts.concurrency),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		Metadata:      map[string]string{"ferry_service": r.svc.name, "ferry_job": r.job.Name, "ferry_priority": string(p)},
	}
}

// jobLimits reads a job's own limits from its message, and the runs it
// had as earlier messages (a retry rescheduled as a new message).
func jobLimits(msg jetstream.Msg) (maxAttempts int, timeout time.Duration, before int) {
	h := msg.Headers()
	if n, err := strconv.Atoi(h.Get(naming.HeaderJobMaxAttempts)); err == nil {
		maxAttempts = n
	}
	// A timeout too long for a time.Duration counts as none: multiplied,
	// it would wrap around to any duration, a few microseconds say.
	if ms, err := strconv.ParseInt(h.Get(naming.HeaderJobTimeout), 10, 64); err == nil && ms > 0 && ms <= math.MaxInt64/int64(time.Millisecond) {
		timeout = time.Duration(ms) * time.Millisecond
	}
	// Unparsable counts as none (Atoi answers an out-of-range number with
	// the largest int and an error).
	if n, err := strconv.Atoi(h.Get(naming.HeaderJobAttempts)); err == nil && n > 0 {
		before = n
	}
	return maxAttempts, timeout, before
}

// longRetry is the least retry delay that waits as a message schedule
// instead of a delayed redelivery: a job waiting that long holds no
// ack-pending slot of its consumer.
var longRetry = time.Minute

// reschedule stores a failed job again as a message schedule that runs it
// after delay, carrying the runs it had, so that it waits holding nothing;
// the caller then acknowledges the delivery. It reports whether it did.
func (r *jobRunner[In, Out]) reschedule(d *worker.Delivery, id string, delay time.Duration) bool {
	at := time.Now().Add(delay).Truncate(time.Second).Add(time.Second)
	msg := nats.NewMsg(naming.JobScheduleSubject(r.job.Name, id))
	for k, vs := range d.Msg.Headers() {
		if !strings.HasPrefix(strings.ToLower(k), "nats-") {
			msg.Header[k] = append([]string(nil), vs...)
		}
	}
	msg.Header.Set(naming.HeaderJobAttempts, strconv.FormatUint(d.Attempt, 10))
	// Unique per delivered message, the same for its redeliveries: a
	// replayed job's attempts start afresh, so its attempt number may be
	// one an earlier schedule of the job already used within the
	// de-duplication window.
	msg.Header.Set(naming.HeaderMsgID, id+":"+strconv.FormatUint(d.Meta.Sequence.Stream, 10))
	msg.Data = d.Msg.Data()
	target := JobPriority(d.Msg.Headers().Get(naming.HeaderJobPriority)).subject(r.job.Name)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := r.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(naming.JobStream(r.job.Name)),
		jetstream.WithScheduleAt(at), jetstream.WithScheduleTarget(target))
	if err != nil {
		r.svc.logger.Warn("ferry: job retry not rescheduled; it waits as a delayed redelivery", slog.String("job", r.job.Name),
			slog.String("id", id), slog.String("err", err.Error()))
		return false
	}
	return true
}

// StopIntake implements lifecycle.Component.
func (r *jobRunner[In, Out]) StopIntake() {
	for _, w := range r.lanes {
		w.StopIntake()
	}
}

// Drain implements lifecycle.Component: the lanes drain together.
func (r *jobRunner[In, Out]) Drain(ctx context.Context) error {
	errs := make([]error, len(r.lanes))
	var wg sync.WaitGroup
	for i, w := range r.lanes {
		wg.Go(func() { errs[i] = w.Drain(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close implements lifecycle.Component.
func (r *jobRunner[In, Out]) Close(ctx context.Context) error {
	if r.notice != nil {
		_ = r.notice.Unsubscribe()
	}
	var errs []error
	for _, w := range r.lanes {
		errs = append(errs, w.Close(ctx))
	}
	return errors.Join(errs...)
}

// cancelNotice cancels the run of a job on this replica, if it runs here.
func (r *jobRunner[In, Out]) cancelNotice(msg *nats.Msg) {
	id := msg.Subject[len(naming.JobCancelSubject(r.job.Name, "")):]
	r.mu.Lock()
	cancel := r.running[id]
	r.mu.Unlock()
	if cancel != nil {
		cancel(errJobCancelled)
	}
}

// handle is the worker's handler: move the record to running, run the
// chain, record how it ended.
func (r *jobRunner[In, Out]) handle(ctx context.Context, d *worker.Delivery) worker.Result {
	msg := d.Msg
	header := natsproto.Canonical(msg.Headers())
	id := header.Get(naming.HeaderJobID)
	req := &Request{Kind: KindJob, Service: r.svc.name, Name: r.job.Name, Transport: TransportNATS,
		ID: requestID(header.Get(HeaderRequestID)), header: header.Get, logger: r.svc.logger, calls: &r.svc.calls}
	var o *telemetry.Outcome
	if ob := r.svc.observer.load(); ob != nil {
		o = r.outcome(d, id, req.ID, header)
		ctx = ob.Begin(ctx, o)
		d.Data = &deliveryObservation{ob: ob, ctx: ctx, o: o}
	}
	if !jobs.ValidID(id) {
		noteEventError(o, http.StatusUnprocessableEntity, "malformed_job")
		return worker.Result{Outcome: worker.DeadLetter, Reason: "malformed job: no valid " + naming.HeaderJobID + " header"}
	}

	// Register the run before it is recorded, so a cancel notice sent
	// after the record says "running" finds it.
	outer := ctx // ends only with the run's time or the replica's shutdown
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r.mu.Lock()
	r.running[id] = cancel
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.running, id)
		r.mu.Unlock()
	}()

	begin := r.begin
	if r.job.workflow {
		begin = r.beginRun
	}
	current, start, err := begin(ctx, d, id)
	known := &lastRecord{rec: current, stop: outer.Done()}
	switch {
	case err != nil:
		noteEventError(o, http.StatusServiceUnavailable, "job_record_unavailable")
		return worker.Result{Outcome: worker.Retry, Reason: "job record: " + err.Error()}
	case !start:
		if o != nil {
			o.Result = telemetry.Skipped
		}
		return worker.Result{Outcome: worker.Ack} // cancelled, or finished before
	}

	data := msg.Data()
	var x *execution // a workflow run's execution
	if r.job.workflow {
		if len(data) == 0 {
			data = current.Input // a wake: the input is in the record
		}
		x = r.newExecution(ctx, d, current)
		x.outer = outer
		ctx = context.WithValue(ctx, executionKey{}, x)
		defer r.endRun(known)
		if current.CancelRequested {
			cancel(errJobCancelled) // woken to compensate and end cancelled
		}
	}
	var in In
	if err := r.decode(data, &in); err != nil {
		reason := "malformed job input: " + err.Error()
		noteEventError(o, http.StatusUnprocessableEntity, "malformed_job")
		r.finish(known, id, jobs.Failed, nil, nil, reason)
		return worker.Result{Outcome: worker.DeadLetter, Reason: reason}
	}

	progress := newProgress(func(ctx context.Context, p jobs.Progress) error {
		return known.update(ctx, r.store, id, func(rec *jobs.Record) (time.Duration, error) {
			if rec.State != jobs.Running {
				return 0, jobs.ErrNoChange
			}
			rec.Progress = &p
			return 0, nil
		})
	})
	stopPoll := r.pollCancel(ctx, id, cancel)

	ctx = context.WithValue(withRequest(ctx, req), jobKey{}, id)
	var out *Out
	req.invoke = func(ctx context.Context) error {
		var err error
		out, err = r.handler(ctx, &in, progress)
		return err
	}
	err = r.run(ctx, req)
	stopPoll()
	last := progress.stop()
	cancelled := errors.Is(context.Cause(ctx), errJobCancelled)
	if x != nil {
		if cancelled && errors.As(err, new(*retryRun)) {
			cancelled = false // its compensations are not done: it runs again, still cancelled
		}
		known.steps = x.recordedSteps()
		if err != nil {
			known.failedStep = x.failedStep(err)
		}
		if s := x.suspension(); s != nil {
			if o != nil {
				o.Result = telemetry.Suspended
			}
			return r.suspendRun(known, d, x, s, last)
		}
	}

	switch {
	case err == nil:
		result, merr := json.Marshal(out)
		public := "the job's output does not encode as JSON"
		if limit := r.maxResult(known.current()); merr == nil && len(result) > limit {
			// It could never be recorded: a permanent failure, not a
			// store to wait for.
			merr = fmt.Errorf("%d bytes, more than its record holds (%d)", len(result), limit)
			public = fmt.Sprintf("the job's output is %d bytes; its record holds at most %d", len(result), limit)
		}
		if merr != nil {
			reason := "job output: " + merr.Error() // the dead letter's and the log's; the record's is public
			r.finish(known, id, jobs.Failed, last, nil, public)
			return worker.Result{Outcome: worker.DeadLetter, Reason: reason}
		}
		if !r.finish(known, id, jobs.Succeeded, last, result, "") {
			return worker.Result{Outcome: worker.Retry, Reason: "its end could not be recorded"}
		}
		return worker.Result{Outcome: worker.Ack}
	case cancelled:
		noteEventError(o, 499, "cancelled")
		if !r.finish(known, id, jobs.Cancelled, last, nil, publicError(err)) {
			return worker.Result{Outcome: worker.Retry, Reason: "its end could not be recorded"}
		}
		return worker.Result{Outcome: worker.Ack}
	}
	if o != nil {
		fe := errorFrom(err)
		noteEventError(o, fe.GetStatus(), fe.code())
	}
	reason, public := describe(err), publicError(err) // the dead letter's; the record's, which callers read
	if errors.Is(ctx.Err(), context.Canceled) {
		// Cut off by the shutdown (the worker hands the job back without
		// counting the run): queued again, whatever attempt it was.
		r.requeue(known, id, last, public, true)
		return worker.Result{Outcome: worker.Retry, Reason: reason}
	}
	if IsPermanent(err) || d.Attempt >= uint64(d.MaxAttempts) {
		r.finish(known, id, jobs.Failed, last, nil, public)
		return worker.Result{Outcome: worker.DeadLetter, Reason: reason}
	}
	if delay := r.retryDelay(d.Attempt); delay >= longRetry && r.reschedule(d, id, delay) {
		r.requeueAt(known, id, last, public, time.Now().Add(delay))
		if o != nil {
			o.Result = telemetry.Retried // acknowledged, but a failed run: its retry is the schedule's
		}
		return worker.Result{Outcome: worker.Ack}
	}
	r.requeue(known, id, last, public, false) // runs again after a backoff
	return worker.Result{Outcome: worker.Retry, Reason: reason}
}

// maxResult is the largest output the record rec can hold: the broker's
// maximum payload, less the record's input (a workflow run's) and room
// for its other fields.
func (r *jobRunner[In, Out]) maxResult(rec *jobs.Record) int {
	limit := int64(1 << 20)
	if c := r.svc.Client(); c != nil && c.nc != nil {
		if mp := c.nc.MaxPayload(); mp > 0 {
			limit = mp
		}
	}
	if rec != nil {
		limit -= int64(len(rec.Input) + len(rec.LastError))
	}
	return int(max(limit-8192, 1024))
}

// begin moves the record to running for this delivery; start is false
// when the job must not run (cancelled, or finished before). A record
// that does not exist yet — the enqueuer stopped before writing it, or
// has not written it yet — is made from the message.
func (r *jobRunner[In, Out]) begin(ctx context.Context, d *worker.Delivery, id string) (*jobs.Record, bool, error) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	replay := d.Msg.Headers().Get(naming.HeaderJobReplay) != ""
	for range 3 {
		start := false
		rec, err := r.store.Update(wctx, id, func(rec *jobs.Record) (time.Duration, error) {
			start = false
			switch {
			case rec.State.Final() && !(replay && rec.State == jobs.Failed):
				return 0, jobs.ErrNoChange
			case rec.CancelRequested: // cancelled while its last run's replica was gone
				rec.State, rec.FinishedAt, rec.CancelRequested = jobs.Cancelled, time.Now().UTC(), false
				return r.opts.retention, nil
			}
			start = true
			rec.State, rec.Attempts, rec.MaxAttempts, rec.StartedAt = jobs.Running, int(d.Attempt), d.MaxAttempts, time.Now().UTC()
			rec.FinishedAt, rec.Result = time.Time{}, nil
			return 0, nil
		})
		if !errors.Is(err, jobs.ErrNotFound) {
			return rec, start && err == nil, err
		}
		created := r.recordFromMessage(d, id)
		if err := r.store.Create(wctx, created); err != nil && !jobs.Conflict(err) {
			return nil, false, err
		}
	}
	return nil, false, fmt.Errorf("job %s: record not found", id)
}

// recordFromMessage is the record of a job whose enqueuer did not write
// one, made from what its message carries.
func (r *jobRunner[In, Out]) recordFromMessage(d *worker.Delivery, id string) *jobs.Record {
	h := d.Msg.Headers()
	enqueued, ok := headerTime(time.RFC3339Nano, h.Get(naming.HeaderJobEnqueued))
	if !ok {
		enqueued = d.Meta.Timestamp.UTC()
	}
	rec := &jobs.Record{ID: id, Job: r.job.Name, State: jobs.Queued, MaxAttempts: d.MaxAttempts, Key: h.Get(naming.HeaderJobKey),
		RequestID: h.Get(HeaderRequestID), EnqueuedAt: enqueued, Priority: h.Get(naming.HeaderJobPriority), Schedule: h.Get(naming.HeaderJobSchedule)}
	if at, ok := headerTime(time.RFC3339, h.Get(naming.HeaderJobRunAt)); ok {
		rec.RunAt = at
	}
	return rec
}

// recordWriteBudget is how long the write of a run's end or requeue is
// retried when the store fails (a cluster electing a leader answers
// "no responders" for a few seconds).
const recordWriteBudget = 30 * time.Second

// retryRecordWrite calls write until it succeeds, the record is gone, the
// write is larger than the broker takes, recordWriteBudget is spent or
// stop is closed (the replica shuts down: its message goes back to
// another), backing off from 50ms to 2s. The first call is made whatever
// stop says, with 10s of its own.
func retryRecordWrite(stop <-chan struct{}, write func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), recordWriteBudget)
	defer cancel()
	delay := 50 * time.Millisecond
	for {
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		err := write(wctx)
		wcancel()
		if err == nil || errors.Is(err, jobs.ErrNotFound) || errors.Is(err, nats.ErrMaxPayload) {
			return err // done, or never to be done
		}
		select {
		case <-time.After(delay):
		case <-stop:
			return err
		case <-ctx.Done():
			return err
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// finish records how a run ended: its final state, the last progress,
// the result or the error, retrying a failing store (retryRecordWrite).
// It reports whether the record is written: a run whose end could not be
// recorded is not acknowledged but runs again (at least once), so its
// record never stays "running" with no message left to finish it.
func (r *jobRunner[In, Out]) finish(known *lastRecord, id string, state jobs.State, last *jobs.Progress, result json.RawMessage, reason string) bool {
	err := retryRecordWrite(known.stopped(), func(ctx context.Context) error { return r.finishOnce(ctx, known, id, state, last, result, reason) })
	if err != nil {
		r.svc.logger.Error("ferry: job record not written", slog.String("job", r.job.Name), slog.String("id", id),
			slog.String("state", string(state)), slog.String("err", err.Error()))
	}
	return err == nil
}

func (r *jobRunner[In, Out]) finishOnce(ctx context.Context, known *lastRecord, id string, state jobs.State, last *jobs.Progress, result json.RawMessage, reason string) error {
	return known.update(ctx, r.store, id, func(rec *jobs.Record) (time.Duration, error) {
		if rec.State.Final() {
			return 0, jobs.ErrNoChange
		}
		rec.State, rec.FinishedAt, rec.CancelRequested = state, time.Now().UTC(), false
		if last != nil {
			rec.Progress = last
		}
		if known != nil && known.steps > 0 {
			rec.Steps = known.steps
		}
		if state == jobs.Succeeded {
			rec.Result, rec.LastError = result, ""
			if rec.Progress != nil {
				rec.Progress.Percent = 100
			}
		} else if reason != "" {
			rec.LastError = truncate(reason, 2000)
		}
		if rec.Workflow && state == jobs.Failed && !rec.Compensated {
			// Kept, with its steps, until it is resumed or discarded
			// (Cancel): its steps must not outlive it, nor it them.
			if known != nil {
				rec.FailedStep = known.failedStep
			}
			return 0, nil
		}
		return r.opts.retention, nil
	})
}

// requeueAt records a failed run whose job runs again at a time: it waits
// scheduled.
func (r *jobRunner[In, Out]) requeueAt(known *lastRecord, id string, last *jobs.Progress, reason string, at time.Time) {
	r.setRequeued(known, id, last, reason, false, at)
}

// requeue records a failed run that will run again.
func (r *jobRunner[In, Out]) requeue(known *lastRecord, id string, last *jobs.Progress, reason string, handedBack bool) {
	r.setRequeued(known, id, last, reason, handedBack, time.Time{})
}

func (r *jobRunner[In, Out]) setRequeued(known *lastRecord, id string, last *jobs.Progress, reason string, handedBack bool, at time.Time) {
	err := retryRecordWrite(known.stopped(), func(ctx context.Context) error {
		return r.setRequeuedOnce(ctx, known, id, last, reason, handedBack, at)
	})
	if err != nil {
		r.svc.logger.Warn("ferry: job record not written", slog.String("job", r.job.Name), slog.String("id", id), slog.String("err", err.Error()))
	}
}

func (r *jobRunner[In, Out]) setRequeuedOnce(ctx context.Context, known *lastRecord, id string, last *jobs.Progress, reason string, handedBack bool, at time.Time) error {
	return known.update(ctx, r.store, id, func(rec *jobs.Record) (time.Duration, error) {
		if rec.State != jobs.Running {
			return 0, jobs.ErrNoChange
		}
		if rec.CancelRequested && !handedBack && !rec.Workflow {
			// Cancelled after the run returned: it ends here (its retry,
			// when it comes, finds the record final and does not run). A
			// workflow run executes again instead, to run its compensations.
			rec.State, rec.FinishedAt, rec.CancelRequested = jobs.Cancelled, time.Now().UTC(), false
			rec.LastError = truncate(reason, 2000)
			if last != nil {
				rec.Progress = last
			}
			return r.opts.retention, nil
		}
		rec.State = jobs.Queued
		if !at.IsZero() {
			rec.State, rec.RunAt = jobs.Scheduled, at.UTC().Truncate(time.Second).Add(time.Second)
		}
		rec.Requeued = rec.Workflow
		if last != nil {
			rec.Progress = last
		}
		if handedBack {
			rec.Attempts = max(0, rec.Attempts-1) // a shutdown's hand-back does not count
		} else {
			rec.LastError = truncate(reason, 2000)
		}
		return 0, nil
	})
}

// lastRecord is a run's record as this replica last wrote it: the next
// write starts from it instead of reading the record again, and reads it
// only when someone else wrote meanwhile (a cancel, another replica).
type lastRecord struct {
	mu  sync.Mutex
	rec *jobs.Record
	// stop ends the retries of a failing write: the run's replica shuts
	// down (nil: retried for recordWriteBudget).
	stop <-chan struct{}
	// steps, for a workflow run, counts the steps its execution recorded,
	// and failedStep names the step whose error failed it: the final write
	// records them.
	steps      int
	failedStep string
}

// stopped returns the channel that ends the retries of a failing write.
func (l *lastRecord) stopped() <-chan struct{} {
	if l == nil {
		return nil
	}
	return l.stop
}

// current returns the record as last written.
func (l *lastRecord) current() *jobs.Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rec
}

// update applies change as jobs.Store.Update does, starting from the
// record last written; a nil lastRecord, or one without a record, reads it
// first.
func (l *lastRecord) update(ctx context.Context, store *jobs.Store, id string, change func(*jobs.Record) (time.Duration, error)) error {
	if l == nil {
		_, err := store.Update(ctx, id, change)
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var rec *jobs.Record
	var err error
	if l.rec == nil {
		rec, err = store.Update(ctx, id, change)
	} else {
		rec, err = store.UpdateFrom(ctx, l.rec, change)
	}
	if err == nil {
		l.rec = rec
	}
	return err
}

// pollCancel reads the record every jobCancelPoll while the job runs, and
// cancels the run when a cancel was recorded whose notice did not arrive.
func (r *jobRunner[In, Out]) pollCancel(ctx context.Context, id string, cancel context.CancelCauseFunc) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(jobCancelPoll)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
			rec, err := r.store.Get(rctx, id)
			rcancel()
			if err == nil && (rec.CancelRequested || rec.State == jobs.Cancelled) {
				cancel(errJobCancelled)
				return
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// run runs the service's middleware chain for one job; a panic anywhere
// in it fails the run instead of ending the process.
func (r *jobRunner[In, Out]) run(ctx context.Context, req *Request) (err error) {
	defer func() {
		if v := recover(); v != nil {
			r.svc.logger.ErrorContext(ctx, "ferry: job handler or middleware panicked",
				slog.String("service", r.svc.name), slog.String("job", r.job.Name), slog.String("id", JobFromContext(ctx)),
				slog.String("request_id", req.ID), slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			err = &Error{Status: http.StatusInternalServerError, cause: fmt.Errorf("panic: %v", v)}
		}
	}()
	return r.svc.chain(ctx, req)
}

// outcome begins describing a job run for the observer.
func (r *jobRunner[In, Out]) outcome(d *worker.Delivery, id, requestID string, header telemetry.Header) *telemetry.Outcome {
	return &telemetry.Outcome{
		Kind:      telemetry.KindJob,
		Service:   r.svc.name,
		Name:      r.job.Name,
		Route:     r.job.Name,
		Topic:     r.job.Name,
		Transport: TransportNATS,
		EventID:   id,
		RequestID: requestID,
		Header:    header,
		Start:     d.Received,
		Attempt:   d.Attempt,
	}
}

// settled is the worker's Settled hook: it ends the run's observation,
// and fails the record of a job dead-lettered without running (past its
// attempts: its runs hung or their replicas died).
func (r *jobRunner[In, Out]) settled(d *worker.Delivery, st worker.Settlement) {
	obs, _ := d.Data.(*deliveryObservation)
	if obs == nil {
		ob := r.svc.observer.load()
		if ob == nil {
			return
		}
		header := natsproto.Canonical(d.Msg.Headers())
		o := r.outcome(d, header.Get(naming.HeaderJobID), requestID(header.Get(HeaderRequestID)), header)
		obs = &deliveryObservation{ob: ob, ctx: ob.Begin(context.Background(), o), o: o}
	}
	o := obs.o
	if o.Result == "" {
		o.Result = settledResult[st.How]
	}
	o.Reason = st.Reason
	o.Duration = time.Since(o.Start)
	obs.ob.End(obs.ctx, o)
}

// storeDeadLetter stores a failed job in the dead-letter stream, like an
// event's (its topic is the job's name, its consumer "~job"), and makes
// sure its record says failed.
func (r *jobRunner[In, Out]) storeDeadLetter(ctx context.Context, d *worker.Delivery, reason string) error {
	if id := d.Msg.Headers().Get(naming.HeaderJobID); jobs.ValidID(id) {
		known := &lastRecord{stop: ctx.Done()}
		r.finish(known, id, jobs.Failed, nil, nil, "") // a run that failed wrote its own error; one that hung or died has none
		if r.job.workflow {
			r.endRun(known) // a workflow run's parent is woken
		}
	}
	return storeDeadLetter(ctx, r.js, d, reason, r.job.Name, r.svc.name, naming.JobDeadLetterConsumer)
}

// publicError is what a job's record says of a failed run: what the
// error would answer a caller — an *Error's detail, a generic line for
// any other error — never its internal text, which goes to the logs and
// the dead letter.
func publicError(err error) string {
	fe := errorFrom(err)
	if fe.Detail != "" {
		return fe.Detail
	}
	if fe.Title != "" {
		return fe.Title
	}
	return http.StatusText(fe.GetStatus())
}

// truncate shortens s to n bytes at most, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
