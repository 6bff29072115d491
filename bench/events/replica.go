package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/nats-io/nats.go/jetstream"
)

// The replica contenders are diagnostic: the raw consumer with, one by
// one, the steps Ferry's consume path took per event when they were
// written (subscription.handle then; internal/worker and subscription.go
// now), to measure what each step costs and what a proposed change would
// save. Name one as "replica" followed by features to add (+f) or remove
// (-f), in order; "all" is every step of that path (it started a
// goroutine and a progress ticker per event, since replaced by long-lived
// workers and one reporter per subscription):
//
//	replica+all                 ≈ Ferry's consume path
//	replica+all-goroutine       handlers on 64 long-lived workers instead of a goroutine per event
//	replica+all-validate        no decode into any + huma.Validate
//	replica+all-ticker+afterfunc progress reported by a re-armed time.AfterFunc, no goroutine + ticker
//
// Features:
//
//	goroutine  a goroutine per event, started once a slot is free (pull loop); else 64 workers
//	pool       Ferry's pull loop (a slot, then Next) handing each event over an unbuffered
//	           channel to 64 long-lived workers instead of a goroutine per event
//	metadata   msg.Metadata() and the Nats-Msg-Id header
//	validate   json.Unmarshal into any, then huma.Validate against T's schema (Ferry's validator)
//	context    the Request and Event values, context.WithValue ×2, a recover-deferring call
//	timeout    context.WithTimeout(5m) around the handler (Ferry's handler timeout)
//	ticker     a time.Ticker (ackWait/3) and a goroutine sending InProgress until the handler returns
//	afterfunc  the same progress by a time.AfterFunc re-armed from its own callback (no goroutine)
//	sweeper    instead of timeout and ticker: context.WithCancel, the event registered in a map
//	           that one goroutine per consumer sweeps every ackWait/3 (InProgress for each
//	           running handler, cancel past the timeout)
//
// The typed json.Unmarshal and the Ack are always done.
var replicaFeatures = []string{"goroutine", "pool", "metadata", "validate", "context", "timeout", "ticker", "afterfunc", "sweeper"}

var replicaAll = []string{"goroutine", "metadata", "validate", "context", "timeout", "ticker"}

// parseReplica returns the feature set of a replica contender's name.
func parseReplica(name string) (map[string]bool, error) {
	rest, ok := strings.CutPrefix(name, "replica")
	if !ok {
		return nil, fmt.Errorf("not a replica: %q", name)
	}
	set := map[string]bool{}
	for rest != "" {
		op := rest[0]
		if op != '+' && op != '-' {
			return nil, fmt.Errorf("replica %q: want +feature or -feature", name)
		}
		rest = rest[1:]
		end := strings.IndexAny(rest, "+-")
		if end < 0 {
			end = len(rest)
		}
		f := rest[:end]
		rest = rest[end:]
		fs := []string{f}
		if f == "all" {
			fs = replicaAll
		} else if !contains(replicaFeatures, f) {
			return nil, fmt.Errorf("replica %q: unknown feature %q", name, f)
		}
		for _, f := range fs {
			set[f] = op == '+'
		}
	}
	return set, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// starterFor returns the starter of a contender name.
func starterFor(name string) (starter, error) {
	if s, ok := contenders[name]; ok {
		return s, nil
	}
	features, err := parseReplica(name)
	if err != nil {
		return nil, fmt.Errorf("unknown contender %q (ferry, raw, or replica±feature…)", name)
	}
	return func(ctx context.Context, dir string, mode syncMode, consume bool, s *sink) (instance, error) {
		return startReplica(ctx, dir, mode, consume, s, features)
	}, nil
}

// validatorFor builds Ferry's payload validator (messages.go) for T: a
// registry of its own, additionalProperties allowed, precomputed messages.
func validatorFor(t reflect.Type, name string) func([]byte) error {
	registry := huma.NewMapRegistry("#/components/schemas/", huma.DefaultSchemaNamer)
	schema := registry.Schema(t, true, name)
	for _, each := range registry.Map() {
		if addl, ok := each.AdditionalProperties.(bool); ok && !addl {
			each.AdditionalProperties = nil
		}
		each.PrecomputeMessages()
	}
	schema.PrecomputeMessages()
	return func(data []byte) error {
		var raw any
		if err := json.Unmarshal(data, &raw); err != nil {
			return fmt.Errorf("the payload is not JSON: %w", err)
		}
		res := &huma.ValidateResult{}
		huma.Validate(registry, schema, huma.NewPathBuffer(make([]byte, 0, 64), 0), huma.ModeWriteToServer, raw, res)
		if len(res.Errors) > 0 {
			return fmt.Errorf("the payload is not a valid %s: %w", t, errors.Join(res.Errors...))
		}
		return nil
	}
}

type replicaRequest struct {
	kind, service, name, transport, id string
	header                             func(string) string
	invoke                             func(context.Context) error
}

type replicaEvent struct {
	id, topic, subject string
	delivery, sequence uint64
	published          time.Time
}

type (
	replicaRequestKey struct{}
	replicaEventKey   struct{}
)

// startReplica starts the raw contender, whose consumer takes the steps
// features name.
func startReplica(ctx context.Context, dir string, mode syncMode, consume bool, s *sink, features map[string]bool) (instance, error) {
	inst, err := startRaw(ctx, dir, mode, false, s)
	if err != nil || !consume {
		return inst, err
	}
	r := inst.(*rawInstance)
	r.consume = true
	fail := func(err error) (instance, error) {
		_ = r.close(context.Background())
		return nil, err
	}
	if _, err := r.js.CreateOrUpdateStream(ctx, rawDeadLetterConfig()); err != nil {
		return fail(err)
	}
	cons, err := r.js.CreateOrUpdateConsumer(ctx, rawStreamConfig().Name, rawConsumerConfig())
	if err != nil {
		return fail(err)
	}
	if r.iter, err = cons.Messages(jetstream.PullMaxMessages(concurrency)); err != nil {
		return fail(err)
	}
	validate := validatorFor(reflect.TypeFor[OrderPlaced](), placed.Name)
	base := context.Background()
	ackWait := rawConsumerConfig().AckWait
	sweep := newSweeper(ackWait/3, 5*time.Minute)
	if features["sweeper"] {
		r.workers.Go(func() { sweep.run(r.iterDone) })
	}
	handle := func(msg jetstream.Msg) {
		id := ""
		var md *jetstream.MsgMetadata
		if features["metadata"] {
			var err error
			if md, err = msg.Metadata(); err != nil {
				_ = msg.Nak()
				return
			}
			if id = msg.Headers().Get(jetstream.MsgIDHeader); id == "" {
				id = strconv.FormatUint(md.Sequence.Stream, 10)
			}
		}
		if features["validate"] {
			if err := validate(msg.Data()); err != nil {
				err = fmt.Errorf("replica: %w", err)
				r.failed.Store(&err)
				_ = msg.Term()
				return
			}
		}
		var event OrderPlaced
		if err := json.Unmarshal(msg.Data(), &event); err != nil {
			err = fmt.Errorf("replica: %w", err)
			r.failed.Store(&err)
			_ = msg.Term()
			return
		}
		handler := func(context.Context) error { s.handled(); return nil }
		ctx := base
		if features["context"] {
			header := msg.Headers()
			req := &replicaRequest{kind: "event", service: serviceName, name: consumerName, transport: "nats",
				id: header.Get("Ferry-Request-Id"), header: func(name string) string { return header.Get(name) }}
			ev := &replicaEvent{id: id, topic: placed.Name, subject: msg.Subject()}
			if md != nil {
				ev.delivery, ev.sequence, ev.published = md.NumDelivered, md.Sequence.Stream, md.Timestamp
			}
			ctx = context.WithValue(context.WithValue(base, replicaRequestKey{}, req), replicaEventKey{}, ev)
			req.invoke = handler
			handler = func(ctx context.Context) (err error) {
				defer func() {
					if v := recover(); v != nil {
						err = fmt.Errorf("panic: %v", v)
					}
				}()
				return req.invoke(ctx)
			}
		}
		switch {
		case features["sweeper"]:
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			defer cancel()
			key := sweep.add(msg, cancel)
			defer sweep.remove(key)
		case features["timeout"]:
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, 5*time.Minute)
			defer cancel()
		}
		var stop func()
		switch {
		case features["ticker"]:
			progress := time.NewTicker(ackWait / 3)
			done := make(chan struct{})
			go func() {
				for {
					select {
					case <-progress.C:
						if ctx.Err() == nil {
							_ = msg.InProgress()
						}
					case <-done:
						return
					}
				}
			}()
			stop = func() { progress.Stop(); close(done) }
		case features["afterfunc"]:
			var mu sync.Mutex
			stopped := false
			var t *time.Timer
			t = time.AfterFunc(ackWait/3, func() {
				mu.Lock()
				defer mu.Unlock()
				if stopped || ctx.Err() != nil {
					return
				}
				_ = msg.InProgress()
				t.Reset(ackWait / 3)
			})
			stop = func() {
				mu.Lock()
				stopped = true
				mu.Unlock()
				t.Stop()
			}
		}
		err := handler(ctx)
		if stop != nil {
			stop()
		}
		if err == nil {
			_ = msg.Ack()
		}
	}
	if features["pool"] {
		// Ferry's pull loop, handing events to long-lived workers.
		slots := make(chan struct{}, concurrency)
		work := make(chan jetstream.Msg)
		var pool sync.WaitGroup
		for range concurrency {
			pool.Go(func() {
				for msg := range work {
					handle(msg)
					<-slots
				}
			})
		}
		r.workers.Go(func() {
			defer pool.Wait()
			defer close(work)
			for {
				slots <- struct{}{}
				msg, err := r.iter.Next()
				if err != nil {
					<-slots
					if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
						return
					}
					time.Sleep(time.Millisecond)
					continue
				}
				work <- msg
			}
		})
		return r, nil
	}
	if features["goroutine"] {
		// Ferry's pull loop: take a slot, fetch one event, start its goroutine.
		slots := make(chan struct{}, concurrency)
		r.workers.Go(func() {
			var inflight sync.WaitGroup
			defer inflight.Wait()
			for {
				slots <- struct{}{}
				msg, err := r.iter.Next()
				if err != nil {
					<-slots
					if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
						return
					}
					time.Sleep(time.Millisecond)
					continue
				}
				inflight.Go(func() {
					defer func() { <-slots }()
					handle(msg)
				})
			}
		})
		return r, nil
	}
	for range concurrency {
		r.workers.Go(func() {
			for {
				msg, err := r.iter.Next()
				if err != nil {
					if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
						return
					}
					time.Sleep(time.Millisecond)
					continue
				}
				handle(msg)
			}
		})
	}
	return r, nil
}

// sweeper reports progress for every running handler, and cancels those
// past their timeout, from one goroutine per consumer.
type sweeper struct {
	every, timeout time.Duration
	mu             sync.Mutex
	next           uint64
	running        map[uint64]sweepEntry
}

type sweepEntry struct {
	msg     jetstream.Msg
	cancel  context.CancelFunc
	started time.Time
}

func newSweeper(every, timeout time.Duration) *sweeper {
	return &sweeper{every: every, timeout: timeout, running: map[uint64]sweepEntry{}}
}

func (w *sweeper) add(msg jetstream.Msg, cancel context.CancelFunc) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.next++
	w.running[w.next] = sweepEntry{msg: msg, cancel: cancel, started: time.Now()}
	return w.next
}

func (w *sweeper) remove(key uint64) {
	w.mu.Lock()
	delete(w.running, key)
	w.mu.Unlock()
}

func (w *sweeper) run(done <-chan struct{}) {
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			w.mu.Lock()
			for key, e := range w.running {
				if now.Sub(e.started) > w.timeout {
					e.cancel()
					delete(w.running, key)
					continue
				}
				_ = e.msg.InProgress()
			}
			w.mu.Unlock()
		}
	}
}
