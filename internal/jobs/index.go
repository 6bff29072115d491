package jobs

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The index: one key per job, "i.<job>.<group>.<id>", in the bucket of
// the records, so that the jobs of a kind in a group of states are the
// keys under one subject filter and a listing reads only them, in the
// order they entered the group (the stream's order), never every record.
// The groups are "open" (queued, scheduled and running: the key is
// written when the record is created and kept through its runs and
// retries) and each final state (written when the job ends, the open key
// purged then): a job that succeeds costs three index writes, a retry
// none.
//
// The record is the truth; the index follows it. Every write that changes
// a record's group (Create, Update, Put) then publishes, without waiting,
// the new group's key and a purge of the old one. Both are conditional on
// the record: JetStream stores them only if the record's key is still at
// the revision the write made (Nats-Expected-Last-Subject-Sequence on the
// record's subject). One that finds the record moved on is decided again
// from the record as it is then (put the key if the record is in that
// group, purge it if it is not), so writers racing from several
// processes leave the index as the record's last state says: a put lands
// only while the record is in its group, a purge only while it is not.
//
// What remains: an index write lost to a broker failure or a process that
// died between the record and the index (the job is missing from its
// group's list until its next change of group), and, for a moment, keys
// not yet written or purged. A listing therefore reads each key's record
// and returns only jobs that are in the asked state now (repairing a
// stale key it meets: one whose record left the key's group). Keys of
// finished jobs expire with their records; purges leave markers that
// expire after indexMarkerTTL.

// indexMarkerTTL is how long the marker of a purged index key is kept
// (the bucket's minimum; a listing skips markers).
const indexMarkerTTL = time.Second

// indexTimeout bounds an index write's acknowledgement and the
// re-decision of one that lost a race.
const indexTimeout = 10 * time.Second

// openGroup is the index group of the states a job is not finished in.
const openGroup = "open"

// groupOf is the index group of a state: openGroup for queued,
// scheduled and running, the state itself for a final one.
func groupOf(st State) string {
	if st.Final() {
		return string(st)
	}
	return openGroup
}

// indexKey is a job's key in the index of group.
func indexKey(job, group, id string) string {
	return "i." + job + "." + group + "." + id
}

// indexWrites tracks index writes not yet acknowledged, by generation,
// so that a reader can wait for the writes its process started before it
// (Flush) without waiting for those started after.
type indexWrites struct {
	mu      sync.Mutex
	cur     *writeGen   // the generation new writes join; nil: none yet
	pending []*writeGen // the generations with writes pending, cur among them
}

// writeGen is a generation of index writes: idle is closed when its
// pending count reaches 0.
type writeGen struct {
	pending int
	idle    chan struct{}
}

func (w *indexWrites) add() *writeGen {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cur == nil {
		w.cur = &writeGen{idle: make(chan struct{})}
		w.pending = append(w.pending, w.cur)
	}
	w.cur.pending++
	return w.cur
}

func (w *indexWrites) done(g *writeGen) {
	w.mu.Lock()
	defer w.mu.Unlock()
	g.pending--
	if g.pending == 0 {
		close(g.idle)
		if w.cur == g {
			w.cur = nil
		}
		w.pending = slices.DeleteFunc(w.pending, func(p *writeGen) bool { return p == g })
	}
}

// Flush waits until the index writes this store started before the call
// have been acknowledged (or given up), or ctx ends: a listing after it
// sees this process's own changes. Writes started meanwhile do not hold
// it up.
func (s *Store) Flush(ctx context.Context) error {
	s.writes.mu.Lock()
	s.writes.cur = nil // later writes start a generation of their own
	gens := slices.Clone(s.writes.pending)
	s.writes.mu.Unlock()
	for _, g := range gens {
		select {
		case <-g.idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// indexOp is one index write: the key of a job in a group, put or purged.
type indexOp struct {
	job, id string
	group   string
	purge   bool
	ttl     time.Duration // a put's TTL (0: none)
}

// reindex follows a record written at rec.Revision from state from ("":
// a new record): when the write changed the record's group, it publishes
// the new group's key and the purge of the old one, and checks their
// acknowledgements in the background.
func (s *Store) reindex(rec *Record, from State, keep time.Duration) {
	to := groupOf(rec.State)
	if from != "" && groupOf(from) == to {
		return
	}
	ops := make([]indexOp, 0, 2)
	if from != "" {
		ops = append(ops, indexOp{job: rec.Job, id: rec.ID, group: groupOf(from), purge: true})
	}
	ops = append(ops, indexOp{job: rec.Job, id: rec.ID, group: to, ttl: keep})
	futures := make([]jetstream.PubAckFuture, len(ops))
	gen := s.writes.add()
	for i, op := range ops {
		f, err := s.async.PublishMsgAsync(s.indexMsg(op, rec.Revision), s.expectRecord(rec.ID, rec.Revision))
		if err != nil {
			f = nil // decided again below
		}
		futures[i] = f
	}
	go func() {
		defer s.writes.done(gen)
		ctx, cancel := context.WithTimeout(context.Background(), 2*indexTimeout)
		defer cancel()
		for i, f := range futures {
			if f != nil {
				select {
				case <-f.Ok():
					continue
				case err := <-f.Err():
					if !conflict(err) {
						continue // lost: a listing skips what it finds stale; a missing key waits for the next change
					}
				case <-ctx.Done():
					return
				}
			}
			s.redecide(ctx, ops[i])
		}
	}()
}

// redecide applies an index write that found the record moved on to the
// record as it is now; it reports whether it wrote the key.
func (s *Store) redecide(ctx context.Context, op indexOp) (wrote bool) {
	s.redecided.Add(1)
	for range maxConflicts {
		rec, err := s.Get(ctx, op.id)
		switch {
		case errors.Is(err, ErrNotFound):
			if op.purge {
				_, err := s.js.PublishMsg(ctx, s.indexMsg(op, 0))
				return err == nil
			}
			return false
		case err != nil:
			return false
		case op.purge == (groupOf(rec.State) == op.group):
			return false // the key is as the record wants it once its own writer's write lands
		}
		_, err = s.js.PublishMsg(ctx, s.indexMsg(op, rec.Revision), s.expectRecord(op.id, rec.Revision))
		if !conflict(err) {
			return err == nil
		}
	}
	return false
}

// indexMsg is the wire form of an index write (KV's, with a TTL).
func (s *Store) indexMsg(op indexOp, rev uint64) *nats.Msg {
	msg := nats.NewMsg(s.subject(indexKey(op.job, op.group, op.id)))
	if op.purge {
		msg.Header.Set("KV-Operation", "PURGE")
		msg.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
		msg.Header.Set("Nats-TTL", strconv.Itoa(int(indexMarkerTTL/time.Second)))
		return msg
	}
	msg.Data = strconv.AppendUint(nil, rev, 10)
	if op.ttl > 0 {
		msg.Header.Set("Nats-TTL", strconv.FormatInt(int64(max(op.ttl, time.Second)/time.Second), 10))
	}
	return msg
}

// expectRecord makes a publish conditional on the record of id being at
// revision rev.
func (s *Store) expectRecord(id string, rev uint64) jetstream.PublishOpt {
	return jetstream.WithExpectLastSequenceForSubject(rev, s.subject(recordKey(id)))
}

func (s *Store) subject(key string) string { return "$KV." + s.kv.Bucket() + "." + key }

// ListFilter selects the jobs a listing returns; an empty field matches
// all.
type ListFilter struct {
	Job   string
	State State
	// After is the cursor: the index's stream sequence of the last entry
	// the previous page read (0: from the start).
	After uint64
}

// maxStaleSkips bounds the index entries one page reads past limit:
// markers, stale keys, keys of removed records, and, for a state of the
// open group, the keys of jobs in its other states.
func maxStaleSkips(limit int) int { return max(limit, 64) }

// List returns up to limit records matching f, in the order they entered
// the state's group (for a final state, the order they ended; for
// queued, scheduled and running, the order they were created), and the
// cursor of the next page (0: the end was reached). It reads at most
// limit index entries plus maxStaleSkips(limit) skipped ones, and the
// record of each: a page may hold fewer than limit records and still not
// be the last (a listing of queued, say, skips the running and scheduled
// jobs it meets in the open group).
func (s *Store) List(ctx context.Context, f ListFilter, limit int) ([]*Record, uint64, error) {
	tok := func(v string) string {
		if v == "" {
			return "*"
		}
		return v
	}
	group := ""
	if f.State != "" {
		group = groupOf(f.State)
	}
	stream := "KV_" + s.kv.Bucket()
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{s.subject("i." + tok(f.Job) + "." + tok(group) + ".*")},
		InactiveThreshold: 30 * time.Second,
	}
	if f.After > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, f.After+1
	}
	cons, err := s.js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, 0, err
	}
	defer func() { // the server would keep it until its inactivity threshold
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if info := cons.CachedInfo(); info != nil {
			_ = s.js.DeleteConsumer(dctx, stream, info.Name)
		}
	}()
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, 0, err
	}
	remaining := info.NumPending // entries after the cursor, markers included
	skips := maxStaleSkips(limit)
	var out []*Record
	cursor := f.After
	for len(out) < limit && remaining > 0 && skips > 0 {
		want := int(min(remaining, uint64(limit-len(out))))
		batch, err := cons.Fetch(want, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return out, cursor, err
		}
		var entries []indexEntry
		for msg := range batch.Messages() {
			md, err := msg.Metadata()
			if err != nil {
				continue
			}
			remaining = md.NumPending
			entries = append(entries, indexEntry{seq: md.Sequence.Stream, subject: msg.Subject(), op: msg.Headers().Get("KV-Operation")})
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && len(entries) == 0 {
			return out, cursor, err
		}
		if len(entries) == 0 {
			break // the entries counted expired meanwhile
		}
		recs := s.verify(ctx, entries, f.State)
		for i, e := range entries {
			if ctx.Err() != nil {
				return out, cursor, ctx.Err()
			}
			cursor = e.seq
			if recs[i] != nil {
				out = append(out, recs[i])
			} else {
				skips--
			}
		}
	}
	if remaining == 0 {
		cursor = 0
	}
	return out, cursor, nil
}

// indexEntry is one index key as a listing read it.
type indexEntry struct {
	seq         uint64
	subject, op string
}

// verify reads the record of each entry and returns it where it is in
// the entry's group and in state want ("": any), nil elsewhere. A stale
// entry — the record left the entry's group, or was removed while not
// finished — is purged; an open entry whose record is open in another
// state than want is only skipped.
func (s *Store) verify(ctx context.Context, entries []indexEntry, want State) []*Record {
	recs := make([]*Record, len(entries))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, e := range entries {
		if e.op != "" { // a delete or purge marker
			continue
		}
		// $KV.<bucket>.i.<job>.<group>.<id>
		parts := strings.Split(e.subject, ".")
		if len(parts) != 6 {
			continue
		}
		job, group, id := parts[3], parts[4], parts[5]
		if group != openGroup && !State(group).Final() {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			rec, err := s.Get(ctx, id)
			switch {
			case err == nil && rec.Job == job && groupOf(rec.State) == group:
				if want == "" || rec.State == want {
					recs[i] = rec
				}
			case errors.Is(err, ErrNotFound) && group == openGroup, err == nil && rec.Job == job:
				// Stale: purged, unless the record went back to the group meanwhile.
				// (A finished job's key expires with its record.)
				s.redecide(ctx, indexOp{job: job, id: id, group: group, purge: true})
			}
		}()
	}
	wg.Wait()
	return recs
}

// Reindex writes the index key of every record's group, for the keys
// lost to a broker failure or a process that died between a record and
// its index write (a listing does not find those jobs until their next
// change between open and final). It reads every record, so it is an
// operator's repair, not a routine; stale keys need no repair (a listing
// skips and purges them). It returns how many keys it wrote.
func (s *Store) Reindex(ctx context.Context) (int, error) {
	w, err := s.kv.Watch(ctx, recordKey("*"), jetstream.IgnoreDeletes())
	if err != nil {
		return 0, err
	}
	defer func() { _ = w.Stop() }()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return n, errors.New("records' watch ended")
			}
			if e == nil {
				return n, nil // every stored record was read
			}
			rec, err := decode(e)
			if err != nil {
				continue // unreadable: a listing skips it too
			}
			key := indexKey(rec.Job, groupOf(rec.State), rec.ID)
			if _, err := s.kv.Get(ctx, key); err == nil {
				continue // in place
			}
			if s.redecide(ctx, indexOp{job: rec.Job, id: rec.ID, group: groupOf(rec.State)}) {
				n++
			}
		}
	}
}
