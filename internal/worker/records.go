package worker

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// record is what the worker keeps about one message beyond JetStream's
// own delivery count: deliveries that were handed back without a failed
// run, and a verdict reached but not yet stored as a dead letter.
type record struct {
	Free    uint64 `json:"free,omitempty"`
	Verdict string `json:"verdict,omitempty"`

	seq      uint64 // the message's stream sequence
	revision uint64 // the KV revision read, 0 when none
}

// maxMemoryRecords bounds the records kept in memory.
const maxMemoryRecords = 10000

// records keeps the records in a key-value bucket when there is one, and
// in a bounded map as well, so a verdict holds in this process even when
// the bucket cannot be written.
type records struct {
	kv     jetstream.KeyValue
	prefix string

	mu  sync.Mutex
	mem map[uint64]record
}

func newRecords(kv jetstream.KeyValue, prefix string) *records {
	return &records{kv: kv, prefix: prefix, mem: map[uint64]record{}}
}

func (r *records) key(seq uint64) string { return r.prefix + strconv.FormatUint(seq, 10) }

// get returns the record of a message; the zero record when it has none.
func (r *records) get(ctx context.Context, seq uint64) record {
	r.mu.Lock()
	rec, inMemory := r.mem[seq]
	r.mu.Unlock()
	rec.seq = seq
	if inMemory && rec.revision == 0 {
		rec.revision = 1 // something to forget
	}
	if r.kv == nil {
		return rec
	}
	entry, err := r.kv.Get(ctx, r.key(seq))
	if err != nil {
		return rec
	}
	var stored record
	if json.Unmarshal(entry.Value(), &stored) != nil {
		return rec
	}
	stored.seq, stored.revision = seq, entry.Revision()
	if inMemory && rec.Verdict != "" && stored.Verdict == "" {
		stored.Verdict = rec.Verdict
	}
	stored.Free = max(stored.Free, rec.Free)
	return stored
}

// update applies change to the record of a message and stores it.
func (r *records) update(ctx context.Context, seq uint64, change func(*record)) {
	r.mu.Lock()
	rec := r.mem[seq]
	change(&rec)
	if len(r.mem) >= maxMemoryRecords {
		clear(r.mem)
	}
	r.mem[seq] = rec
	r.mu.Unlock()
	if r.kv == nil {
		return
	}
	for range 3 { // an optimistic update: another replica may write too
		stored := record{}
		var rev uint64
		entry, err := r.kv.Get(ctx, r.key(seq))
		switch {
		case err == nil:
			_ = json.Unmarshal(entry.Value(), &stored)
			rev = entry.Revision()
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			return
		}
		change(&stored)
		data, _ := json.Marshal(stored)
		if rev == 0 {
			_, err = r.kv.Create(ctx, r.key(seq), data)
		} else {
			_, err = r.kv.Update(ctx, r.key(seq), data, rev)
		}
		if err == nil || ctx.Err() != nil {
			return
		}
	}
}

func (r *records) addFree(ctx context.Context, seq uint64) {
	r.update(ctx, seq, func(rec *record) { rec.Free++ })
}

func (r *records) setVerdict(ctx context.Context, seq uint64, verdict string) {
	r.update(ctx, seq, func(rec *record) { rec.Verdict = verdict })
}

// purgedMarkerTTL is how long the marker of a purged record stays.
const purgedMarkerTTL = time.Minute

// forget removes the record of a settled message.
func (r *records) forget(ctx context.Context, rec record) {
	r.mu.Lock()
	delete(r.mem, rec.seq)
	r.mu.Unlock()
	if r.kv != nil {
		_ = r.kv.Purge(ctx, r.key(rec.seq), jetstream.PurgeTTL(purgedMarkerTTL))
	}
}
