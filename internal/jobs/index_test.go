package jobs

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// testStores starts an embedded broker and returns n stores over the same
// bucket, each on a connection of its own (as several processes would
// be).
func testStores(t *testing.T, n int) []*Store {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("broker not ready")
	}
	t.Cleanup(srv.Shutdown)
	ctx := context.Background()
	var stores []*Store
	for i := range n {
		nc, err := nats.Connect(srv.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		var kv jetstream.KeyValue
		if i == 0 {
			kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "ferry-jobs", LimitMarkerTTL: time.Second})
		} else {
			kv, err = js.KeyValue(ctx, "ferry-jobs")
		}
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, NewStore(js, kv, kv))
	}
	return stores
}

// indexKeys returns the live index keys of a job.
func indexKeys(t *testing.T, s *Store, job, id string) []string {
	t.Helper()
	var keys []string
	for _, g := range []string{openGroup, string(Succeeded), string(Failed), string(Cancelled)} {
		if _, err := s.kv.Get(context.Background(), indexKey(job, g, id)); err == nil {
			keys = append(keys, g)
		}
	}
	return keys
}

// Writers in several processes move the same records between states at
// once, within the open group and out of it (a final state, then back);
// when they are done, each record has exactly the index key of its last
// state's group.
func TestIndexConvergesUnderRaces(t *testing.T) {
	stores := testStores(t, 4)
	ctx := context.Background()
	var ids []string
	for range 8 {
		rec := &Record{ID: NewID(), Job: "race", State: Queued, EnqueuedAt: time.Now().UTC()}
		if err := stores[0].Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
	}
	states := []State{Queued, Running, Scheduled, Failed}
	var wg sync.WaitGroup
	for _, s := range stores {
		wg.Go(func() {
			for i := range 200 {
				id := ids[i%len(ids)]
				_, err := s.Update(ctx, id, func(rec *Record) (time.Duration, error) {
					rec.State = states[rand.IntN(len(states))]
					if rand.IntN(3) == 0 {
						rec.Progress = &Progress{Percent: float64(i)} // a change that keeps the state
					}
					return 0, nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, s := range stores {
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var redecided int64
	for _, s := range stores {
		redecided += s.redecided.Load()
	}
	t.Logf("%d index writes found their record moved on and were decided again", redecided)
	for _, id := range ids {
		rec, err := stores[0].Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if keys := indexKeys(t, stores[0], "race", id); len(keys) != 1 || keys[0] != groupOf(rec.State) {
			t.Errorf("job %s in state %s: index keys %v", id, rec.State, keys)
		}
	}
	// And the listing of each state returns each job once.
	seen := map[string]int{}
	for _, st := range states {
		var after uint64
		for {
			recs, next, err := stores[1].List(ctx, ListFilter{Job: "race", State: st, After: after}, 3)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				seen[r.ID]++
			}
			if next == 0 {
				break
			}
			after = next
		}
	}
	if len(seen) != len(ids) {
		t.Errorf("listed %d jobs of %d: %v", len(seen), len(ids), seen)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("job %s listed %d times", id, n)
		}
	}
}
