package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Step is a workflow step's durable record, written once when the step
// completed: its result, or the error that ended it. The first write wins:
// an execution that finds the step recorded returns what is recorded.
// Keys: "s.<run>.<position>" for steps ("s.<run>.<position>.<i>" for the
// i-th of a fan-out), "c.<run>.<position>" for the compensation of the
// step at position.
type Step struct {
	// Name is the step's name, checked when an execution replays it.
	Name string `json:"n"`
	// Result is the step's result as JSON.
	Result json.RawMessage `json:"r,omitempty"`
	// Error is the error that ended the step, when it failed.
	Error *StepError `json:"e,omitempty"`
	// Signal is the stream sequence of the signal a receive consumed.
	Signal uint64 `json:"g,omitempty"`
	// Compensable marks a step whose compensation was registered.
	Compensable bool `json:"u,omitempty"`
	// At is when the step was recorded; Attempts how many runs it took.
	At       time.Time `json:"t"`
	Attempts int       `json:"a,omitempty"`

	// Key is the step's key; not stored.
	Key string `json:"-"`
}

// StepError is a failed step's error as it is recorded.
type StepError struct {
	Status  int    `json:"status"`
	Code    string `json:"code,omitempty"`
	Title   string `json:"title,omitempty"`
	Detail  string `json:"detail,omitempty"`
	Message string `json:"message,omitempty"` // the error's text, for logs and the dead letter
}

// StepKey is the key of the step at position pos of run (sub >= 0: the
// sub-th step of a fan-out at pos).
func StepKey(run string, pos, sub int) string {
	k := "s." + run + "." + strconv.Itoa(pos)
	if sub >= 0 {
		k += "." + strconv.Itoa(sub)
	}
	return k
}

// CompensationKey is the key of the compensation of run's step at pos.
func CompensationKey(run string, pos int) string { return "c." + run + "." + strconv.Itoa(pos) }

// GetStep returns the step recorded under key, or ErrNotFound.
func (s *Store) GetStep(ctx context.Context, key string) (*Step, error) {
	e, err := s.steps.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, ErrNotFound
	case err != nil:
		return nil, err
	}
	return decodeStep(e)
}

func decodeStep(e jetstream.KeyValueEntry) (*Step, error) {
	st := new(Step)
	if err := json.Unmarshal(e.Value(), st); err != nil {
		return nil, fmt.Errorf("workflow step %s: %w", e.Key(), err)
	}
	st.Key = e.Key()
	return st, nil
}

// RecordStep writes a step under key unless one is recorded there: it
// returns the step recorded, st or the one an earlier write recorded.
func (s *Store) RecordStep(ctx context.Context, key string, st *Step) (*Step, error) {
	st.At = time.Now().UTC()
	data, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	for range 3 {
		_, err = s.steps.Create(ctx, key, data)
		if err == nil {
			st.Key = key
			return st, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, err
		}
		got, gerr := s.GetStep(ctx, key)
		if !errors.Is(gerr, ErrNotFound) {
			return got, gerr
		}
		// Removed between the two calls (the run's steps were purged).
	}
	return nil, err
}

// DeleteStep removes the step recorded under key (a failed step a resumed
// run runs again).
func (s *Store) DeleteStep(ctx context.Context, key string) error {
	return s.steps.Purge(ctx, key)
}

// Steps returns the steps and compensations recorded for run, in position
// order.
func (s *Store) Steps(ctx context.Context, run string) ([]*Step, error) {
	var steps []*Step
	for _, prefix := range []string{"s.", "c."} {
		lister, err := s.steps.ListKeysFiltered(ctx, prefix+run+".>")
		if err != nil {
			return nil, err
		}
		var keys []string
		for k := range lister.Keys() {
			keys = append(keys, k)
		}
		_ = lister.Stop()
		for _, k := range keys {
			st, err := s.GetStep(ctx, k)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			steps = append(steps, st)
		}
	}
	sort.SliceStable(steps, func(i, j int) bool { return stepOrder(steps[i].Key) < stepOrder(steps[j].Key) })
	return steps, nil
}

// stepOrder sorts a run's keys: steps by position (a fan-out's by index),
// then compensations after every step, in the order they ran (reverse
// position).
func stepOrder(key string) string {
	parts := strings.Split(key, ".")
	if len(parts) < 3 {
		return "2" + key // not a step's key: last
	}
	pos, _ := strconv.Atoi(parts[2])
	pos = min(max(pos, 0), 1<<31-1)
	sub := -1
	if len(parts) > 3 {
		sub, _ = strconv.Atoi(parts[3])
		sub = min(max(sub, -1), 1<<31-2)
	}
	if parts[0] == "c" {
		return fmt.Sprintf("1%010d", 1<<31-pos)
	}
	return fmt.Sprintf("0%010d%010d", pos, sub+1)
}

// signalKey is the key of one signal sent to run.
func signalKey(run, name, id string) string { return "g." + run + "." + name + "." + id }

// PutSignal stores a signal named name for run, its value as JSON, under
// id (a signal sent again with the same id is stored once).
func (s *Store) PutSignal(ctx context.Context, run, name, id string, value json.RawMessage) error {
	_, err := s.steps.Create(ctx, signalKey(run, name, id), value)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil
	}
	return err
}

// DeleteSignal removes a signal stored with PutSignal, leaving nothing
// behind (a key-value purge would leave a marker for good: the run's own
// purge may have happened already).
func (s *Store) DeleteSignal(ctx context.Context, run, name, id string) error {
	stream, err := s.stream(ctx)
	if err != nil {
		return err
	}
	return stream.Purge(ctx, jetstream.WithPurgeSubject("$KV."+s.steps.Bucket()+"."+signalKey(run, name, id)))
}

// NextSignal returns the first signal named name sent to run whose
// sequence is after `after`: its value and sequence; ErrNotFound if none.
func (s *Store) NextSignal(ctx context.Context, run, name string, after uint64) (json.RawMessage, uint64, error) {
	stream, err := s.stream(ctx)
	if err != nil {
		return nil, 0, err
	}
	raw, err := stream.GetMsg(ctx, after+1, jetstream.WithGetMsgSubject("$KV."+s.steps.Bucket()+"."+signalKey(run, name, "*")))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil, 0, ErrNotFound
	case err != nil:
		return nil, 0, err
	}
	return raw.Data, raw.Sequence, nil
}

// Forget removes what run recorded beside its record: its steps,
// compensations and signals.
func (s *Store) Forget(ctx context.Context, run string) error {
	stream, err := s.stream(ctx)
	if err != nil {
		return err
	}
	return stream.Purge(ctx, jetstream.WithPurgeSubject("$KV."+s.steps.Bucket()+".*."+run+".>"))
}

// stream is the steps bucket's stream, looked up once.
func (s *Store) stream(ctx context.Context) (jetstream.Stream, error) {
	if st := s.kvStream.Load(); st != nil {
		return *st, nil
	}
	st, err := s.js.Stream(ctx, "KV_"+s.steps.Bucket())
	if err != nil {
		return nil, err
	}
	s.kvStream.Store(&st)
	return st, nil
}
