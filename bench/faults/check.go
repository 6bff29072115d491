package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
)

// tally is what the checker found for one kind of operation.
type tally struct {
	Acknowledged, Found, Lost int
	// ExtraRuns counts handler runs beyond the first: at-least-once.
	ExtraRuns int
	// Unabsorbed counts operations a retry made twice: two jobs or runs
	// for one key, an event stored twice under one message ID. Must be 0.
	Unabsorbed int
}

// verdict is the checker's comparison of the acks with the store.
type verdict struct {
	tally
	ByKind map[string]*tally
	// JetStreamDuplicates counts the publishes JetStream reported as
	// duplicates: a retry of an attempt that had in fact stored the event.
	JetStreamDuplicates int
	// Missing names some lost operations, Problems some unabsorbed ones.
	Missing, Problems []string
}

// readAcks reads the driver's acks file.
func readAcks(path string) ([]ack, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []ack
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var a ack
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, a)
	}
	return out, sc.Err()
}

// runs maps "<kind>-done.<subject>" to what each run of it that reached
// its end ran (a job or run ID, a stream sequence, "x"), and
// "state.<id>" to the state of the job or run with that ID, as its record
// says once the checker read it.
type runs map[string][]string

// stateKey is where runs holds the state of the job or run id.
func stateKey(id string) string { return "state." + id }

// readRuns lists the keys of the bucket the handlers record in.
func readRuns(ctx context.Context, kv jetstream.KeyValue) (runs, error) {
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = lister.Stop() }()
	out := runs{}
	for key := range lister.Keys() {
		parts := strings.Split(key, ".")
		if len(parts) < 4 {
			continue
		}
		what := parts[len(parts)-2]
		subject := strings.Join(parts[:len(parts)-2], ".")
		out[subject] = append(out[subject], what)
	}
	return out, ctx.Err()
}

// check compares acks with the recorded runs.
func check(acks []ack, r runs) *verdict {
	v := &verdict{ByKind: map[string]*tally{}}
	for _, k := range opKinds {
		v.ByKind[k] = &tally{}
	}
	for _, a := range acks {
		t := v.ByKind[a.Kind]
		if t == nil {
			continue
		}
		t.Acknowledged++
		if a.Duplicate {
			v.JetStreamDuplicates++
		}
		var subjects []string
		want := a.ID  // what every run of the operation must have run
		ended := true // a job or run must have succeeded, as its record says
		switch a.Kind {
		case opCall:
			subjects, want = []string{kindCall + doneSuffix + "." + a.Op}, "x"
		case opPublish:
			subjects, want = []string{kindEvent + doneSuffix + "." + a.Op}, strconv.FormatUint(a.Seq, 10)
		case opEnqueue:
			subjects = []string{kindJob + doneSuffix + "." + a.Op}
			ended = slices.Contains(r[stateKey(a.ID)], string(ferry.JobSucceeded))
		case opStart:
			for _, s := range FlowSteps {
				subjects = append(subjects, kindStep+doneSuffix+"."+a.Op+"."+s)
			}
			ended = slices.Contains(r[stateKey(a.ID)], string(ferry.JobSucceeded))
		}
		found, unabsorbed := ended, false
		for _, s := range subjects {
			got := r[s]
			if len(got) == 0 {
				found = false
				continue
			}
			t.ExtraRuns += len(got) - 1
			for _, w := range got {
				if w != want {
					unabsorbed = true
				}
			}
		}
		if found {
			t.Found++
		} else {
			t.Lost++
			if len(v.Missing) < 10 {
				v.Missing = append(v.Missing, a.Kind+" "+a.Op)
			}
		}
		if unabsorbed {
			t.Unabsorbed++
			if len(v.Problems) < 10 {
				v.Problems = append(v.Problems, fmt.Sprintf("%s %s: acknowledged as %q, ran as %v", a.Kind, a.Op, want, r[subjects[0]]))
			}
		}
	}
	for _, t := range v.ByKind {
		v.Acknowledged += t.Acknowledged
		v.Found += t.Found
		v.Lost += t.Lost
		v.ExtraRuns += t.ExtraRuns
		v.Unabsorbed += t.Unabsorbed
	}
	return v
}

// settle reads the store until every acknowledged operation is found or
// limit passes, then, once found, waits one more ack wait and reads it a
// last time (runs of work redelivered after the first look count too), and
// returns the last verdict and how long it waited. state reads the state
// of a job or run from its record.
func settle(ctx context.Context, kv jetstream.KeyValue, state func(context.Context, string) (string, error), acks []ack, limit time.Duration) (*verdict, time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	final := map[string]string{} // job and run IDs whose state is final
	look := func() (*verdict, error) {
		r, err := readRuns(ctx, kv)
		if err != nil {
			return nil, err
		}
		for _, a := range acks {
			if a.Kind != opEnqueue && a.Kind != opStart {
				continue
			}
			st, ok := final[a.ID]
			if !ok {
				if st, err = state(ctx, a.ID); err != nil {
					return nil, err
				}
				if ferry.JobState(st).Final() {
					final[a.ID] = st
				}
			}
			r[stateKey(a.ID)] = []string{st}
		}
		return check(acks, r), nil
	}
	var last *verdict
	for {
		v, err := look()
		if err == nil {
			last = v
			if last.Lost == 0 {
				waited := time.Since(start)
				select {
				case <-ctx.Done():
				case <-time.After(ackWait + time.Second):
					if v, err := look(); err == nil && v.Lost == 0 {
						last = v
					}
				}
				return last, waited, nil
			}
		}
		select {
		case <-ctx.Done():
			if last == nil {
				return nil, time.Since(start), fmt.Errorf("read the store: %w", err)
			}
			return last, time.Since(start), nil
		case <-time.After(time.Second):
		}
	}
}

// kindsInOrder is the verdict's kinds in a stable order, for reports.
func kindsInOrder(v *verdict) []string {
	out := make([]string, 0, len(v.ByKind))
	for k := range v.ByKind {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
