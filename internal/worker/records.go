package worker

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// record is what the worker keeps about one message beyond JetStream's
// own delivery count: deliveries that were handed back without a failed
// run, and a verdict reached but not yet stored as a dead letter.
type record struct {
	Free    uint64 `json:"free,omitempty"`
	Verdict string `json:"verdict,omitempty"`

	seq    uint64 // the message's stream sequence
	exists bool   // kept in memory or in the bucket: forget it when settled
}

// maxMemoryRecords bounds the records kept in memory.
const maxMemoryRecords = 10000

// records keeps the records in a key-value bucket when there is one, and
// in a bounded map as well, so a verdict holds in this process even when
// the bucket cannot be written.
type records struct {
	kv     jetstream.KeyValue
	prefix string
	epoch  atomic.Value // string: the stream's creation, so a recreated stream's sequences start afresh

	mu  sync.Mutex
	mem map[uint64]record
}

func newRecords(kv jetstream.KeyValue, prefix string) *records {
	return &records{kv: kv, prefix: prefix, mem: map[uint64]record{}}
}

func (r *records) key(seq uint64) string {
	epoch, _ := r.epoch.Load().(string)
	return r.prefix + epoch + strconv.FormatUint(seq, 10)
}

// setEpoch starts the records of the stream created at t (those of an
// earlier stream of the same name no longer apply).
func (r *records) setEpoch(t time.Time) {
	r.epoch.Store(strconv.FormatInt(t.UnixNano(), 36) + ".")
	r.mu.Lock()
	clear(r.mem)
	r.mu.Unlock()
}

// get returns the record of a message; the zero record when it has none.
func (r *records) get(ctx context.Context, seq uint64) record {
	r.mu.Lock()
	rec, inMemory := r.mem[seq]
	r.mu.Unlock()
	rec.seq = seq
	rec.exists = inMemory
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
	stored.seq, stored.exists = seq, true
	if inMemory && rec.Verdict != "" && stored.Verdict == "" {
		stored.Verdict = rec.Verdict
	}
	stored.Free = max(stored.Free, rec.Free)
	return stored
}

// update applies change to the record of a message and stores it; the
// error says the record is kept in this process only.
func (r *records) update(ctx context.Context, seq uint64, change func(*record)) error {
	r.mu.Lock()
	rec := r.mem[seq]
	change(&rec)
	if len(r.mem) >= maxMemoryRecords {
		clear(r.mem)
	}
	r.mem[seq] = rec
	r.mu.Unlock()
	if r.kv == nil {
		return nil
	}
	var err error
	for range 3 { // an optimistic update: another replica may write too
		stored := record{}
		var rev uint64
		var entry jetstream.KeyValueEntry
		entry, err = r.kv.Get(ctx, r.key(seq))
		switch {
		case err == nil:
			_ = json.Unmarshal(entry.Value(), &stored)
			rev = entry.Revision()
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			return err
		}
		change(&stored)
		data, _ := json.Marshal(stored)
		if rev == 0 {
			_, err = r.kv.Create(ctx, r.key(seq), data)
		} else {
			_, err = r.kv.Update(ctx, r.key(seq), data, rev)
		}
		if err == nil || ctx.Err() != nil {
			return err
		}
	}
	return err
}

func (r *records) addFree(ctx context.Context, seq uint64) error {
	return r.update(ctx, seq, func(rec *record) { rec.Free++ })
}

func (r *records) setVerdict(ctx context.Context, seq uint64, verdict string) error {
	return r.update(ctx, seq, func(rec *record) { rec.Verdict = verdict })
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
