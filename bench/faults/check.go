package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
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

// runs maps "<kind>.<subject>" to what each recorded run of it ran (a job
// or run ID, a stream sequence, "x").
type runs map[string][]string

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
		want := a.ID // what every run of the operation must have run
		switch a.Kind {
		case opCall:
			subjects, want = []string{kindCall + "." + a.Op}, "x"
		case opPublish:
			subjects, want = []string{kindEvent + "." + a.Op}, strconv.FormatUint(a.Seq, 10)
		case opEnqueue:
			subjects = []string{kindJob + "." + a.Op}
		case opStart:
			for _, s := range FlowSteps {
				subjects = append(subjects, kindStep+"."+a.Op+"."+s)
			}
		}
		found, unabsorbed := true, false
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
// limit passes, and returns the last verdict and how long it waited.
func settle(ctx context.Context, kv jetstream.KeyValue, acks []ack, limit time.Duration) (*verdict, time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var last *verdict
	for {
		r, err := readRuns(ctx, kv)
		if err == nil {
			last = check(acks, r)
			if last.Lost == 0 {
				return last, time.Since(start), nil
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
