package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrNotFound is the error of a job that has no record (never enqueued, or
// removed after its retention).
var ErrNotFound = errors.New("job not found")

// ErrNoChange, returned by an update function, leaves the record as it is.
var ErrNoChange = errors.New("no change")

// maxConflicts bounds the compare-and-set retries of one update: each
// conflict means another writer changed the record meanwhile, and the
// update is applied again to what it wrote.
const maxConflicts = 32

// Store is the records of jobs in one key-value bucket. It is safe for
// concurrent use.
type Store struct {
	kv     jetstream.KeyValue
	steps  jetstream.KeyValue // workflow runs' steps, compensations and signals
	js     jetstream.JetStream
	async  jetstream.JetStream // the index's writes, acknowledged in the background
	writes indexWrites
	// redecided counts index writes that found their record moved on.
	redecided atomic.Int64
	// kvStream is the steps bucket's stream (signals are read from it).
	kvStream atomic.Pointer[jetstream.Stream]
}

// NewStore returns the store over the bucket kv, written through js; the
// steps of workflow runs are kept in the bucket steps.
func NewStore(js jetstream.JetStream, kv, steps jetstream.KeyValue) *Store {
	s := &Store{kv: kv, steps: steps, js: js, async: js}
	if a, err := jetstream.New(js.Conn(), jetstream.WithPublishAsyncTimeout(indexTimeout)); err == nil {
		s.async = a
	}
	return s
}

// recordKey is the key of a job's record.
func recordKey(id string) string { return "r." + id }

// uniqueKey is the key of a uniqueness marker: the job's name and a hash
// of the caller's key (any string, of any length, becomes a valid key).
func uniqueKey(job, key string) string {
	sum := sha256.Sum256([]byte(key))
	return "u." + job + "." + base64.RawURLEncoding.EncodeToString(sum[:])
}

// Create stores a new record. It fails with jetstream.ErrKeyExists when
// the job has one.
func (s *Store) Create(ctx context.Context, rec *Record) error {
	rec.UpdatedAt = time.Now().UTC()
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	rev, err := s.kv.Create(ctx, recordKey(rec.ID), data)
	if err != nil {
		return err
	}
	rec.Revision = rev
	s.reindex(rec, "", 0)
	rec.stored = rec.State
	return nil
}

// Get returns a job's record, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*Record, error) {
	e, err := s.kv.Get(ctx, recordKey(id))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, ErrNotFound
	case err != nil:
		return nil, err
	}
	return decode(e)
}

func decode(e jetstream.KeyValueEntry) (*Record, error) {
	rec := new(Record)
	if err := json.Unmarshal(e.Value(), rec); err != nil {
		return nil, fmt.Errorf("job record %s: %w", e.Key(), err)
	}
	rec.Revision, rec.stored = e.Revision(), rec.State
	return rec, nil
}

// Update applies change to the job's current record and writes it back
// if no one wrote it meanwhile; on a conflict it reads the record again
// and applies change again, so change must decide from the record alone.
// change returns how long the record is kept after this write (0: until
// the next one), or ErrNoChange to leave it, or another error to stop.
// Update returns the record as it is after the call.
func (s *Store) Update(ctx context.Context, id string, change func(*Record) (keep time.Duration, err error)) (*Record, error) {
	return s.update(ctx, id, nil, change)
}

// UpdateFrom is Update starting from known, the record as last read or
// written, instead of reading it first: one round trip instead of two when
// no one wrote it since. known is not modified.
func (s *Store) UpdateFrom(ctx context.Context, known *Record, change func(*Record) (keep time.Duration, err error)) (*Record, error) {
	if known == nil {
		return nil, ErrNotFound
	}
	return s.update(ctx, known.ID, known, change)
}

// update applies change to a copy of known, when given, else to the
// record read, and reads it again after each conflict.
func (s *Store) update(ctx context.Context, id string, known *Record, change func(*Record) (keep time.Duration, err error)) (*Record, error) {
	for range maxConflicts {
		var rec *Record
		if known != nil {
			rec, known = known.clone(), nil
		} else {
			var err error
			if rec, err = s.Get(ctx, id); err != nil {
				return nil, err
			}
		}
		keep, err := change(rec)
		if errors.Is(err, ErrNoChange) {
			return rec, nil
		}
		if err != nil {
			return rec, err
		}
		err = s.put(ctx, rec, keep)
		if err == nil {
			return rec, nil
		}
		if !conflict(err) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("job %s: record changed %d times during one update", id, maxConflicts)
}

// Put writes rec if its key is still at rec.Revision, kept for keep after
// this write (0: until the next one). A write that lost a race fails with
// an error for which Conflict holds. rec must have been read through the
// store (Get, Update), which knows the state it leaves.
func (s *Store) Put(ctx context.Context, rec *Record, keep time.Duration) error {
	return s.put(ctx, rec, keep)
}

func (s *Store) put(ctx context.Context, rec *Record, keep time.Duration) error {
	if err := s.write(ctx, rec, keep); err != nil {
		return err
	}
	s.reindex(rec, rec.stored, keep)
	rec.stored = rec.State
	return nil
}

func (s *Store) write(ctx context.Context, rec *Record, keep time.Duration) error {
	rec.UpdatedAt = time.Now().UTC()
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if keep <= 0 {
		rev, err := s.kv.Update(ctx, recordKey(rec.ID), data, rec.Revision)
		if err == nil {
			rec.Revision = rev
		}
		return err
	}
	// KV's Update takes no TTL: this is its wire form with one.
	msg := nats.NewMsg("$KV." + s.kv.Bucket() + "." + recordKey(rec.ID))
	msg.Data = data
	ack, err := s.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(rec.Revision), jetstream.WithMsgTTL(keep))
	if err != nil {
		return err
	}
	rec.Revision = ack.Sequence
	return nil
}

// Conflict reports whether err is a compare-and-set that lost: the record
// changed since it was read.
func Conflict(err error) bool { return conflict(err) }

func conflict(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
	}
	return errors.Is(err, jetstream.ErrKeyExists)
}

// Reserve claims the uniqueness key of a job for window: the first caller
// stores id and gets it back with first set; a later one, within the
// window, gets the id stored first and when the key was bound to it.
func (s *Store) Reserve(ctx context.Context, job, key, id string, window time.Duration) (got string, first bool, bound time.Time, err error) {
	k := uniqueKey(job, key)
	_, err = s.kv.Create(ctx, k, []byte(id), jetstream.KeyTTL(window))
	switch {
	case err == nil:
		return id, true, time.Now(), nil
	case !errors.Is(err, jetstream.ErrKeyExists):
		return "", false, time.Time{}, err
	}
	e, err := s.kv.Get(ctx, k)
	if err != nil {
		return "", false, time.Time{}, err // expired between the two calls: the caller retries
	}
	return string(e.Value()), false, e.Created(), nil
}

// Rebind points the uniqueness key of a job, found pointing at stale (a
// job whose record is gone: removed after its retention, or never
// written), at id for a fresh window, unless someone rebound it first;
// it returns the ID the key points at after the call.
func (s *Store) Rebind(ctx context.Context, job, key, stale, id string, window time.Duration) (string, error) {
	k := uniqueKey(job, key)
	e, err := s.kv.Get(ctx, k)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		got, _, _, err := s.Reserve(ctx, job, key, id, window)
		return got, err
	case err != nil:
		return "", err
	case string(e.Value()) != stale:
		return string(e.Value()), nil
	}
	msg := nats.NewMsg("$KV." + s.kv.Bucket() + "." + k)
	msg.Data = []byte(id)
	_, err = s.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(e.Revision()), jetstream.WithMsgTTL(window))
	if conflict(err) {
		e, err := s.kv.Get(ctx, k)
		if err != nil {
			return "", err
		}
		return string(e.Value()), nil
	}
	if err != nil {
		return "", err
	}
	return id, nil
}

// Watch follows a job's record: the current one first (if any), then
// every change, until ctx ends or Stop is called.
func (s *Store) Watch(ctx context.Context, id string) (jetstream.KeyWatcher, error) {
	return s.kv.Watch(ctx, recordKey(id))
}

// Decode reads a watched entry; nil for a deleted or expired record.
func Decode(e jetstream.KeyValueEntry) (*Record, error) {
	if e == nil || e.Operation() != jetstream.KeyValuePut {
		return nil, nil
	}
	return decode(e)
}
