// Package worker is Ferry's durable pull worker: it takes messages from a
// JetStream durable consumer only when one of its slots is free, runs each
// through a handler, and settles it by the handler's result — ack, retry
// after a backoff, dead-letter, or hand back — with the delivery limit
// counted by Ferry, not by the server.
//
// What counts toward the limit is handler runs that failed or hung. A
// message the worker hands back without running it to the end (fetched
// but not started at shutdown, interrupted by the end of the grace period,
// or deferred by the handler) is recorded as a free delivery in a
// key-value bucket, so the redelivery does not count. A dead letter that
// cannot be stored leaves the message in its stream, retried with backoff
// until it is, with the verdict recorded so the handler does not run
// again.
//
// The worker also reports progress for long runs, notices a pull the
// server lost within about a second (idle heartbeats), and recreates a
// deleted consumer after the last acknowledgement it knew instead of from
// the start of the stream.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry/internal/natsproto"
)

// Outcome is how a delivery is settled.
type Outcome int

// The outcomes a handler can ask for.
const (
	// Ack: the work is done.
	Ack Outcome = iota
	// Retry: the run failed; it is redelivered after a backoff, or
	// dead-lettered when it was the last attempt.
	Retry
	// DeadLetter: give up at once.
	DeadLetter
	// Defer: hand the message back without counting the delivery, to be
	// redelivered after Result.Delay (another run holds its work).
	Defer
)

// Result is a handler's verdict on one delivery.
type Result struct {
	Outcome Outcome
	// Reason is the error of a failed run: logged on retry, kept with
	// the dead letter.
	Reason string
	// Delay is how long a deferred message waits.
	Delay time.Duration
}

// Delivery is one delivery of a message to the worker.
type Delivery struct {
	Msg  jetstream.Msg
	Meta *jetstream.MsgMetadata
	// Attempt counts the runs of the handler for this message, this one
	// included, from 1: deliveries minus the free ones.
	Attempt uint64
	// Received is when the worker took the delivery.
	Received time.Time
	// Data is the handler's own, for the Settled hook (what it began
	// observing, say); nil when the handler did not run.
	Data any
	// MaxAttempts and Timeout are this message's limits: the worker's,
	// or what Config.Limits read from the message.
	MaxAttempts int
	Timeout     time.Duration
}

// Settled says how a delivery was settled, for the Settled hook.
type Settled int

// How deliveries are settled.
const (
	// Acked: the handler succeeded; the message is acknowledged.
	Acked Settled = iota
	// Skipped: acknowledged without running the handler (it was
	// acknowledged before its consumer was recreated).
	Skipped
	// Retried: the run failed; the message is redelivered after a backoff.
	Retried
	// DeadLettered: the dead letter is stored; the message acknowledged.
	DeadLettered
	// DeadLetterFailed: the dead letter could not be stored; the message
	// stays in its stream and is tried again.
	DeadLetterFailed
	// HandedBack: returned without counting an attempt (shutdown, or
	// fetched and not started).
	HandedBack
	// Deferred: returned without counting an attempt, as the handler
	// asked.
	Deferred
)

// Settlement is how one delivery ended.
type Settlement struct {
	How Settled
	// Ran is whether the handler ran for this delivery.
	Ran bool
	// Reason is the error of a failed run or the dead letter's reason.
	Reason string
}

// Config configures a Worker.
type Config struct {
	// Name describes the worker in logs ("subscription ship of service
	// shipping").
	Name string
	// JS is the JetStream context; Stream the stream consumed.
	JS     jetstream.JetStream
	Stream string
	// Consumer is the durable consumer's configuration. Its MaxDeliver is
	// ignored: the worker owns the limit. Its deliver policy applies when
	// the consumer is first created.
	Consumer jetstream.ConsumerConfig
	// Concurrency is how many messages run at once.
	Concurrency int
	// Timeout bounds one run of the handler.
	Timeout time.Duration
	// MaxAttempts is how many runs a message gets before it is
	// dead-lettered.
	MaxAttempts int
	// Backoff is the delay before attempt n+1 after n failed ones.
	Backoff func(n uint64) time.Duration
	// Limits, when set, reads a message's own limits (a job's), given the
	// worker's: what it returns replaces MaxAttempts and Timeout for that
	// message; a value below 1 keeps the worker's. Before counts the runs
	// the message's work had as earlier messages (a job retried later as a
	// new message): they are added to its Attempt.
	Limits func(msg jetstream.Msg) (maxAttempts int, timeout time.Duration, before int)
	// Handle runs one delivery. The worker recovers a panic in it as a
	// failed run.
	Handle func(ctx context.Context, d *Delivery) Result
	// DeadLetter stores a dead letter; the message is acknowledged once it
	// returns nil.
	DeadLetter func(ctx context.Context, d *Delivery, reason string) error
	// Settled, when set, is called once for every delivery the worker
	// takes, however it is settled, on the goroutine that settled it: the
	// one hook through which metrics, logs and traces see deliveries that
	// never reach the handler (past the limit, skipped, handed back) as
	// well as those that do.
	Settled func(d *Delivery, s Settlement)
	// State keeps the delivery records (free deliveries, recorded
	// verdicts) under StatePrefix; nil keeps them in memory only.
	State       jetstream.KeyValue
	StatePrefix string
	// Logger receives the worker's log.
	Logger *slog.Logger
}

// Worker runs one durable consumer. Start it once; stop it with
// StopIntake, Drain and Close (the lifecycle.Component steps).
type Worker struct {
	cfg     Config
	log     *slog.Logger
	records *records

	base      context.Context // cancelled when the drain deadline passes
	cancel    context.CancelFunc
	stopping  chan struct{}
	stopOnce  sync.Once
	free      chan struct{}      // a token per free slot
	work      chan jetstream.Msg // messages for the slots
	slotsDone chan struct{}      // closed when the slots have returned
	pullDone  chan struct{}      // closed when the pull has returned

	mu       sync.Mutex
	cons     jetstream.Consumer
	known    bool                // the consumer existed while this worker ran
	stream   time.Time           // when the stream it consumes was created
	ackFloor uint64              // the consumer's last known ack floor (stream sequence)
	acked    []uint64            // sequences above the floor this worker acknowledged
	skip     map[uint64]struct{} // acknowledged before the consumer was recreated
	warnOnce sync.Once

	running   []running // per slot: the message it runs, for progress reports
	active    atomic.Int64
	idleFetch atomic.Bool           // the pull waits for messages with none in hand
	problem   atomic.Pointer[error] // why the worker cannot pull, while it cannot
	ackedAny  atomic.Bool           // an ack since the ack floor was last read
}

// running is what one slot runs.
type running struct {
	mu  sync.Mutex
	msg jetstream.Msg // nil when idle
	ctx context.Context
}

func (r *running) set(msg jetstream.Msg, ctx context.Context) {
	r.mu.Lock()
	r.msg, r.ctx = msg, ctx
	r.mu.Unlock()
}

// maxAckedKept bounds the acknowledged sequences a worker remembers above
// the ack floor (to skip them if its consumer is recreated).
const maxAckedKept = 100_000

// HeartbeatInterval is the idle heartbeat of the worker's pull: a pull the
// server no longer holds is noticed after two missed heartbeats.
const HeartbeatInterval = 500 * time.Millisecond

// pullExpiry is how long one pull request waits on the server for
// messages: an idle worker asks again this often.
const pullExpiry = 2 * time.Second

// New returns a worker; it checks the configuration.
func New(cfg Config) (*Worker, error) {
	switch {
	case cfg.JS == nil || cfg.Stream == "" || cfg.Consumer.Durable == "":
		return nil, errors.New("worker: JetStream, stream and durable name are required")
	case cfg.Concurrency < 1 || cfg.MaxAttempts < 1 || cfg.Timeout <= 0 || cfg.Consumer.AckWait <= 0:
		return nil, errors.New("worker: concurrency, max attempts, timeout and ack wait must be positive")
	case cfg.Handle == nil || cfg.DeadLetter == nil || cfg.Backoff == nil:
		return nil, errors.New("worker: Handle, DeadLetter and Backoff are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Consumer.MaxDeliver = -1
	w := &Worker{cfg: cfg, log: cfg.Logger, records: newRecords(cfg.State, cfg.StatePrefix)}
	w.base, w.cancel = context.WithCancel(context.Background())
	w.stopping = make(chan struct{})
	w.free, w.work = make(chan struct{}, cfg.Concurrency), make(chan jetstream.Msg, cfg.Concurrency)
	w.running = make([]running, cfg.Concurrency)
	for range cfg.Concurrency {
		w.free <- struct{}{}
	}
	w.slotsDone, w.pullDone = make(chan struct{}), make(chan struct{})
	return w, nil
}

// Start creates or updates the consumer and starts pulling. A broker
// that does not answer in time (a cluster electing a leader) does not
// fail the start: the pull loop makes the consumer when it can, and
// Health says why it cannot meanwhile.
func (w *Worker) Start(ctx context.Context) error {
	if _, err := w.ensureConsumer(ctx); err != nil && natsproto.Transient(err) && ctx.Err() == nil {
		w.problem.Store(&err)
		w.log.Warn("ferry: cannot create the consumer yet; retrying", slog.String("worker", w.cfg.Name), slog.String("err", err.Error()))
	} else if err != nil {
		w.cancel()
		close(w.slotsDone)
		close(w.pullDone)
		return err
	}
	var slots sync.WaitGroup
	for i := range w.cfg.Concurrency {
		slots.Go(func() { w.slot(&w.running[i]) })
	}
	go func() {
		slots.Wait()
		close(w.slotsDone)
	}()
	go w.loop()
	go w.reportProgress()
	return nil
}

// Health reports why the worker cannot pull (its consumer cannot be
// created or found), or nil.
func (w *Worker) Health() error {
	if p := w.problem.Load(); p != nil {
		return *p
	}
	return nil
}

// StopIntake stops pulling; messages that arrive for a pull still open
// are handed back (free), running handlers go on.
func (w *Worker) StopIntake() {
	w.stopOnce.Do(func() { close(w.stopping) })
}

// Drain waits for the running handlers until ctx ends; then it cancels
// their contexts and returns at once, saying how many were still running.
// Their messages are handed back as they return.
func (w *Worker) Drain(ctx context.Context) error {
	w.StopIntake()
	select {
	case <-w.slotsDone:
		w.cancel()
		return nil
	case <-ctx.Done():
		w.cancel()
		n := w.active.Load()
		if n == 0 {
			return nil
		}
		return fmt.Errorf("%s: grace period over with %d handler(s) running; cancelled, their messages are handed back (%w)", w.cfg.Name, n, ctx.Err())
	}
}

// Close waits, until ctx ends, for handlers cancelled by Drain to return,
// and for the pull to hand back what it fetched. A pull request waiting
// for messages that has received none (an idle consumer asks every
// pullExpiry) is not waited for: a message the server sends it in the
// instant the connection closes is redelivered after the ack wait.
func (w *Worker) Close(ctx context.Context) error {
	w.StopIntake()
	w.cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-w.pullDone:
		case <-tick.C:
			if !w.idleFetch.Load() {
				continue
			}
		case <-ctx.Done():
			return fmt.Errorf("%s: the pull did not stop before the deadline (%w)", w.cfg.Name, ctx.Err())
		}
		break
	}
	select {
	case <-w.slotsDone:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: %d handler(s) ignore their cancelled context; left running, their messages will be redelivered after the ack wait",
			w.cfg.Name, w.active.Load())
	}
}

func (w *Worker) stopped() bool {
	select {
	case <-w.stopping:
		return true
	default:
		return false
	}
}

// ensureConsumer creates the durable consumer or updates it in place. An
// existing consumer keeps where it starts and its pause (an operator's,
// or PauseJobs'); a consumer this worker knew and that has disappeared
// from the same stream is recreated after the last acknowledgement it
// knew (its ack floor), and the messages above the floor this worker
// acknowledged are acknowledged again without running; on a stream that
// was recreated, the consumer starts as a new one; a change JetStream
// cannot apply in place is logged once and the existing consumer is used.
func (w *Worker) ensureConsumer(ctx context.Context) (jetstream.Consumer, error) {
	want := w.cfg.Consumer
	stream, err := w.cfg.JS.Stream(ctx, w.cfg.Stream)
	if err != nil {
		return nil, err
	}
	sinfo := stream.CachedInfo()
	w.mu.Lock()
	if !w.stream.Equal(sinfo.Created) {
		// A stream of its own (or a new one under the same name): what was
		// known of the old one does not apply.
		if !w.stream.IsZero() {
			w.log.Warn("ferry: the stream was recreated; its consumer starts as a new one", slog.String("worker", w.cfg.Name),
				slog.String("stream", w.cfg.Stream))
		}
		w.stream, w.known, w.ackFloor, w.acked, w.skip = sinfo.Created, false, 0, nil, nil
		w.records.setEpoch(sinfo.Created)
	}
	known, floor := w.known, w.ackFloor
	w.mu.Unlock()
	existing, err := w.cfg.JS.Consumer(ctx, w.cfg.Stream, want.Durable)
	switch {
	case err == nil:
		info := existing.CachedInfo()
		want.DeliverPolicy, want.OptStartSeq, want.OptStartTime = info.Config.DeliverPolicy, info.Config.OptStartSeq, info.Config.OptStartTime
		want.PauseUntil = info.Config.PauseUntil // an operator's pause outlives a restart
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		if known {
			want.DeliverPolicy, want.OptStartSeq = jetstream.DeliverByStartSequencePolicy, min(floor, sinfo.State.LastSeq)+1
			w.mu.Lock()
			w.skip = make(map[uint64]struct{}, len(w.acked))
			for _, seq := range w.acked {
				w.skip[seq] = struct{}{}
			}
			w.mu.Unlock()
			w.log.Warn("ferry: consumer deleted behind Ferry's back; recreated after the last acknowledged message it knew, not from the start of the stream",
				slog.String("worker", w.cfg.Name), slog.String("consumer", want.Durable), slog.Uint64("from_stream_sequence", want.OptStartSeq))
		}
	default:
		return nil, err
	}
	cons, err := w.cfg.JS.CreateOrUpdateConsumer(ctx, w.cfg.Stream, want)
	var apiErr *jetstream.APIError
	if err != nil && existing != nil && errors.As(err, &apiErr) && strings.Contains(apiErr.Description, "can not be updated") {
		w.warnOnce.Do(func() {
			w.log.Warn("ferry: consumer configuration changed in a way JetStream cannot apply in place; consuming with the existing consumer until it is migrated (docs/events.md, \"Migrating a stream\")",
				slog.String("worker", w.cfg.Name), slog.String("consumer", want.Durable), slog.String("stream", w.cfg.Stream), slog.String("reason", apiErr.Description))
		})
		cons, err = existing, nil
	}
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.cons, w.known = cons, true
	w.ackFloor = max(w.ackFloor, cons.CachedInfo().AckFloor.Stream)
	w.mu.Unlock()
	return cons, nil
}

// loop supervises the pull: it (re)creates the consumer and pulls from
// it, and starts again when JetStream ends the pull for good (a deleted
// consumer), until the worker stops.
func (w *Worker) loop() {
	defer close(w.pullDone)
	defer w.handBackQueued() // what the slots, stopping, left behind
	for attempt := 0; ; attempt++ {
		if w.stopped() {
			return
		}
		if attempt > 0 {
			select {
			case <-time.After(min(time.Duration(attempt)*200*time.Millisecond, 5*time.Second)):
			case <-w.stopping:
				return
			}
		}
		ctx, cancel := context.WithTimeout(w.base, 10*time.Second)
		cons, err := w.ensureConsumer(ctx)
		cancel()
		if err != nil {
			w.problem.Store(&err)
			w.log.Warn("ferry: cannot (re)create the consumer; retrying", slog.String("worker", w.cfg.Name), slog.String("err", err.Error()))
			continue
		}
		w.problem.Store(nil)
		if !w.pull(cons) {
			return
		}
		attempt = 0
	}
}

// pull fetches as many messages as slots are free, and no more: first
// what the consumer has at once, else one request that waits for messages
// up to pullExpiry, with idle heartbeats (a request the server lost is
// noticed after two missed ones). It returns true when the consumer is
// gone and must be recreated, false when the worker stops.
func (w *Worker) pull(cons jetstream.Consumer) (recreate bool) {
	for {
		n, ok := w.takeSlots()
		if !ok {
			return false
		}
		dispatched, err := w.fetch(cons, n, false)
		if err == nil && dispatched == 0 && !w.stopped() {
			dispatched, err = w.fetch(cons, n, true)
		}
		for range n - dispatched {
			w.free <- struct{}{}
		}
		switch {
		case w.stopped():
			return false
		case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrBadRequest):
			w.log.Warn("ferry: pull ended; recreating the consumer", slog.String("worker", w.cfg.Name), slog.String("err", err.Error()))
			return true
		case err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoHeartbeat):
			w.log.Debug("ferry: pull", slog.String("worker", w.cfg.Name), slog.String("err", err.Error()))
			if w.consumerGone(cons) { // a fetch from a deleted consumer has no responders
				w.log.Warn("ferry: consumer gone; recreating it", slog.String("worker", w.cfg.Name))
				return true
			}
			select { // a connection that is down: do not spin
			case <-time.After(100 * time.Millisecond):
			case <-w.stopping:
				return false
			}
		}
	}
}

// consumerGone reports whether the consumer no longer exists.
func (w *Worker) consumerGone(cons jetstream.Consumer) bool {
	ctx, cancel := context.WithTimeout(w.base, 2*time.Second)
	defer cancel()
	_, err := cons.Info(ctx)
	return errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted)
}

// takeSlots waits for a free slot and takes every other one free now;
// when fewer than half are, it waits up to batchWait for more, so that
// busy slots freeing one by one do not cost a fetch each. ok is false when
// the worker stops.
func (w *Worker) takeSlots() (n int, ok bool) {
	select {
	case <-w.free:
	case <-w.stopping:
		return 0, false
	}
	n = 1
	for n < w.cfg.Concurrency {
		select {
		case <-w.free:
			n++
			continue
		default:
		}
		break
	}
	if n*2 >= w.cfg.Concurrency {
		return n, true
	}
	wait := time.NewTimer(batchWait)
	defer wait.Stop()
	for n*2 < w.cfg.Concurrency {
		select {
		case <-w.free:
			n++
		case <-wait.C:
			return n, true
		case <-w.stopping:
			return 0, false
		}
	}
	return n, true
}

// batchWait is how long the pull waits for half the slots to be free
// before it fetches for fewer.
const batchWait = time.Millisecond

// fetch asks for up to n messages (waiting for them when wait is set) and
// hands each to a slot as it arrives; it returns how many it handed over.
// Once the worker stops, messages still arriving are handed back.
func (w *Worker) fetch(cons jetstream.Consumer, n int, wait bool) (int, error) {
	var batch jetstream.MessageBatch
	var err error
	if wait {
		w.idleFetch.Store(true) // while nothing is in hand: Close need not wait for it
		defer w.idleFetch.Store(false)
		batch, err = cons.Fetch(n, jetstream.FetchMaxWait(pullExpiry), jetstream.FetchHeartbeat(HeartbeatInterval))
	} else {
		batch, err = cons.FetchNoWait(n)
	}
	if err != nil {
		return 0, err
	}
	dispatched := 0
	for msg := range batch.Messages() {
		w.idleFetch.Store(false)
		if w.stopped() {
			w.handBackUnstarted(msg)
		} else {
			w.work <- msg // never blocks: a slot was taken for it
			dispatched++
		}
		w.idleFetch.Store(wait) // waiting again, nothing in hand
	}
	return dispatched, batch.Error()
}

// slot is one of the worker's concurrency slots: it runs the messages the
// pull hands it, one at a time, until the worker stops.
func (w *Worker) slot(r *running) {
	for {
		select {
		case msg := <-w.work:
			w.run(msg, r)
			w.free <- struct{}{}
		case <-w.stopping:
			w.handBackQueued()
			return
		}
	}
}

// handBackQueued hands back the messages fetched for slots that stopped
// before taking them.
func (w *Worker) handBackQueued() {
	for {
		select {
		case msg := <-w.work:
			w.handBackUnstarted(msg)
		default:
			return
		}
	}
}

// run runs one delivery and settles it.
func (w *Worker) run(msg jetstream.Msg, r *running) {
	w.active.Add(1)
	defer w.active.Add(-1)
	received := time.Now()
	md, err := msg.Metadata()
	if err != nil {
		_ = msg.Nak()
		return
	}
	d := &Delivery{Msg: msg, Meta: md, Attempt: md.NumDelivered, Received: received, MaxAttempts: w.cfg.MaxAttempts, Timeout: w.cfg.Timeout}
	before := 0
	if w.cfg.Limits != nil {
		var n int
		var t time.Duration
		n, t, before = w.cfg.Limits(msg)
		if n > 0 {
			d.MaxAttempts = n
		}
		if t > 0 {
			d.Timeout = t
		}
	}
	if w.skipped(md.Sequence.Stream) {
		w.ack(msg, md, record{}) // acknowledged before its consumer was recreated
		w.settle(d, Settlement{How: Skipped})
		return
	}
	var rec record
	if md.NumDelivered > 1 {
		rec = w.records.get(w.base, md.Sequence.Stream)
		d.Attempt = md.NumDelivered - min(rec.Free, md.NumDelivered-1)
	}
	d.Attempt += uint64(max(before, 0))
	switch {
	case rec.Verdict != "":
		w.deadLetter(d, rec, rec.Verdict, false) // decided before: the handler does not run again
		return
	case d.Attempt > uint64(d.MaxAttempts):
		w.deadLetter(d, rec, fmt.Sprintf("delivered %d times without an acknowledgement: the handler hung past its ack wait, or its process died",
			d.Attempt-1), false)
		return
	}

	ctx, cancel := context.WithTimeout(w.base, d.Timeout)
	r.set(msg, ctx)
	res := w.handle(ctx, d)
	r.set(nil, nil)
	cancel()

	switch {
	case res.Outcome == Ack:
		w.ack(msg, md, rec)
		w.settle(d, Settlement{How: Acked, Ran: true})
	case w.base.Err() != nil:
		w.handBack(msg, 0) // cut off by the shutdown: not the handler's failure
		w.settle(d, Settlement{How: HandedBack, Ran: true, Reason: res.Reason})
	case res.Outcome == Defer:
		w.handBack(msg, res.Delay)
		w.settle(d, Settlement{How: Deferred, Ran: true})
	case res.Outcome == DeadLetter, d.Attempt >= uint64(d.MaxAttempts):
		w.deadLetter(d, rec, res.Reason, true)
	default:
		delay := w.cfg.Backoff(d.Attempt)
		w.log.Warn("ferry: handler failed; retrying", slog.String("worker", w.cfg.Name), slog.Uint64("sequence", md.Sequence.Stream),
			slog.Uint64("attempt", d.Attempt), slog.Int("max_attempts", d.MaxAttempts), slog.Duration("retry_in", delay),
			slog.String("err", res.Reason))
		_ = msg.NakWithDelay(delay)
		w.settle(d, Settlement{How: Retried, Ran: true, Reason: res.Reason})
	}
}

// settle tells the Settled hook how d ended; a panic in the hook is
// logged, not let loose on the worker.
func (w *Worker) settle(d *Delivery, s Settlement) {
	if w.cfg.Settled == nil {
		return
	}
	defer func() {
		if v := recover(); v != nil {
			w.log.Error("ferry: delivery observer panicked", slog.String("worker", w.cfg.Name), slog.Any("panic", v))
		}
	}()
	w.cfg.Settled(d, s)
}

// handBackUnstarted hands back a message fetched but never started.
func (w *Worker) handBackUnstarted(msg jetstream.Msg) {
	w.handBack(msg, 0)
	if w.cfg.Settled == nil {
		return
	}
	if md, err := msg.Metadata(); err == nil {
		w.settle(&Delivery{Msg: msg, Meta: md, Attempt: md.NumDelivered, Received: time.Now()}, Settlement{How: HandedBack})
	}
}

// handle runs the handler, turning a panic into a failed run.
func (w *Worker) handle(ctx context.Context, d *Delivery) (res Result) {
	defer func() {
		if v := recover(); v != nil {
			w.log.Error("ferry: handler panicked", slog.String("worker", w.cfg.Name), slog.Uint64("sequence", d.Meta.Sequence.Stream),
				slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			res = Result{Outcome: Retry, Reason: fmt.Sprintf("panic: %v", v)}
		}
	}()
	return w.cfg.Handle(ctx, d)
}

// ack acknowledges a message and forgets its record.
func (w *Worker) ack(msg jetstream.Msg, md *jetstream.MsgMetadata, rec record) {
	_ = msg.Ack()
	w.mu.Lock()
	if md.Sequence.Stream > w.ackFloor && len(w.acked) < maxAckedKept {
		w.acked = append(w.acked, md.Sequence.Stream)
	}
	w.mu.Unlock()
	w.ackedAny.Store(true)
	if rec.exists {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(w.base), 2*time.Second)
		w.records.forget(ctx, rec)
		cancel()
	}
}

// handBack returns a message without counting the delivery: the record
// gains a free delivery, then the message is nak'ed (after delay).
func (w *Worker) handBack(msg jetstream.Msg, delay time.Duration) {
	if md, err := msg.Metadata(); err == nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(w.base), 2*time.Second)
		if err := w.records.addFree(ctx, md.Sequence.Stream); err != nil {
			w.log.Warn("ferry: delivery record not written; the message is handed back, and its next delivery counts as an attempt on other replicas",
				slog.String("worker", w.cfg.Name), slog.Uint64("sequence", md.Sequence.Stream), slog.String("err", err.Error()))
		}
		cancel()
	}
	if delay > 0 {
		_ = msg.NakWithDelay(delay)
		return
	}
	_ = msg.Nak()
}

// deadLetter stores the dead letter and acknowledges the message. If it
// cannot be stored, the verdict is recorded (the handler does not run
// again), the failure is logged once per message, and the message is
// retried with backoff until the dead letter is stored.
func (w *Worker) deadLetter(d *Delivery, rec record, reason string, ran bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.base), 10*time.Second)
	defer cancel()
	seq := d.Meta.Sequence.Stream
	if err := w.cfg.DeadLetter(ctx, d, reason); err != nil {
		if rec.Verdict == "" {
			w.log.Error("ferry: dead letter not stored; the message stays in its stream and is retried until it is",
				slog.String("worker", w.cfg.Name), slog.Uint64("sequence", seq), slog.String("reason", reason), slog.String("err", err.Error()))
			if err := w.records.setVerdict(ctx, seq, reason); err != nil {
				w.log.Warn("ferry: verdict not recorded in the state bucket; another replica may run the handler again",
					slog.String("worker", w.cfg.Name), slog.Uint64("sequence", seq), slog.String("err", err.Error()))
			}
		}
		_ = d.Msg.NakWithDelay(min(w.cfg.Backoff(d.Meta.NumDelivered), time.Minute))
		w.settle(d, Settlement{How: DeadLetterFailed, Ran: ran, Reason: reason})
		return
	}
	w.log.Warn("ferry: dead-lettered", slog.String("worker", w.cfg.Name), slog.Uint64("sequence", seq), slog.String("reason", reason))
	w.ack(d.Msg, d.Meta, rec)
	w.settle(d, Settlement{How: DeadLettered, Ran: ran, Reason: reason})
}

// reportProgress tells JetStream, every third of the ack wait, that each
// running handler is still at work, so a long run keeps its message; a run
// past its timeout is no longer reported, so a message whose handler hangs
// is redelivered after the ack wait. It also refreshes the consumer's ack
// floor while messages are acknowledged.
func (w *Worker) reportProgress() {
	progress := time.NewTicker(w.cfg.Consumer.AckWait / 3)
	defer progress.Stop()
	floor := time.NewTicker(floorRefresh)
	defer floor.Stop()
	for {
		select {
		case <-progress.C:
			for i := range w.running {
				r := &w.running[i]
				r.mu.Lock()
				if r.msg != nil && r.ctx.Err() == nil {
					_ = r.msg.InProgress()
				}
				r.mu.Unlock()
			}
		case <-floor.C:
			if w.ackedAny.Swap(false) {
				w.refreshAckFloor()
			}
		case <-w.slotsDone:
			return
		}
	}
}

// floorRefresh is how often the ack floor is read while messages are
// acknowledged: a deleted consumer is recreated no further back than this.
const floorRefresh = 250 * time.Millisecond

func (w *Worker) refreshAckFloor() {
	w.mu.Lock()
	cons := w.cons
	w.mu.Unlock()
	if cons == nil {
		return
	}
	ctx, cancel := context.WithTimeout(w.base, 2*time.Second)
	defer cancel()
	info, err := cons.Info(ctx)
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ackFloor = max(w.ackFloor, info.AckFloor.Stream)
	w.acked = slices.DeleteFunc(w.acked, func(seq uint64) bool { return seq <= w.ackFloor })
	for seq := range w.skip {
		if seq <= w.ackFloor {
			delete(w.skip, seq)
		}
	}
	if len(w.acked) > 0 {
		w.ackedAny.Store(true) // not all there yet: read it again
	}
}

// skipped reports whether the message was acknowledged by this worker
// before its consumer was recreated.
func (w *Worker) skipped(seq uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.skip[seq]
	if ok {
		delete(w.skip, seq)
	}
	return ok
}
