package jobs

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// entry is a key-value entry as the bucket returns one.
type entry struct {
	jetstream.KeyValueEntry
	key   string
	value []byte
}

func (e entry) Key() string   { return e.key }
func (e entry) Value() []byte { return e.value }

func TestStepOrder(t *testing.T) {
	run := NewID()
	keys := []string{CompensationKey(run, 0), StepKey(run, 10, -1), CompensationKey(run, 3), StepKey(run, 2, 1), StepKey(run, 2, -1), StepKey(run, 2, 0)}
	want := []string{StepKey(run, 2, -1), StepKey(run, 2, 0), StepKey(run, 2, 1), StepKey(run, 10, -1), CompensationKey(run, 3), CompensationKey(run, 0)}
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			if stepOrder(keys[j]) < stepOrder(keys[i]) {
				keys[i], keys[j] = keys[j], keys[i]
			}
		}
	}
	if strings.Join(keys, " ") != strings.Join(want, " ") {
		t.Fatalf("order %v; want %v", keys, want)
	}
}

// FuzzStepRecord feeds a run's step listing keys and values that someone
// with write access to the bucket could have stored: decoding and
// ordering them must not panic.
func FuzzStepRecord(f *testing.F) {
	f.Add("s.abc.1", []byte(`{"n":"reserve","r":1,"t":"2026-11-30T00:00:00Z"}`))
	f.Add("c.abc.x.y", []byte(`{"n":"x","e":{"status":500}}`))
	f.Add("s.", []byte(`null`))
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		_ = stepOrder(key)
		st, err := decodeStep(entry{key: key, value: value})
		if err == nil && st.Key != key {
			t.Fatalf("key %q decoded as %q", key, st.Key)
		}
	})
}
