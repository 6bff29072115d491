package ferry_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// TestUseBucket: a declared bucket exists once the host has started, the
// store answers 503 before, and another program opens it by name.
func TestUseBucket(t *testing.T) {
	svc := ferry.MustNew("keeper", "1.0.0")
	b := ferry.Bucket{Name: "keeper-state", Description: "test", History: 3}
	st := ferry.UseBucket(svc, b)
	var fe *ferry.Error
	if _, err := st.KeyValue(); !errors.As(err, &fe) || fe.Status != http.StatusServiceUnavailable {
		t.Fatalf("KeyValue before the start: %v, want a 503", err)
	}
	h := ferrytest.Start(t, svc)
	kv, err := st.KeyValue()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := kv.Put(ctx, "k", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	opened, err := b.Open(ctx, h.Client)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := opened.Get(ctx, "k"); err != nil || string(e.Value()) != "v1" {
		t.Fatalf("Open then Get: %v, %v", e, err)
	}
	st2, _ := opened.Status(ctx)
	if st2.History() != 3 {
		t.Errorf("history %d, want 3", st2.History())
	}
	if _, err := (ferry.Bucket{Name: "nobody-made-it"}).Open(ctx, h.Client); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Errorf("Open of a bucket nobody made: %v", err)
	}
}

func TestUseBucketRefuses(t *testing.T) {
	tests := []struct {
		name string
		b    ferry.Bucket
	}{
		{"empty name", ferry.Bucket{}},
		{"a dot", ferry.Bucket{Name: "a.b"}},
		{"Ferry's prefix", ferry.Bucket{Name: "ferry-mine"}},
		{"history", ferry.Bucket{Name: "h", History: 65}},
		{"negative size", ferry.Bucket{Name: "s", MaxBytes: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("UseBucket did not panic")
				}
			}()
			ferry.UseBucket(ferry.MustNew("s", "1.0.0"), tt.b)
		})
	}
	t.Run("twice", func(t *testing.T) {
		svc := ferry.MustNew("s", "1.0.0")
		ferry.UseBucket(svc, ferry.Bucket{Name: "once"})
		defer func() {
			if recover() == nil {
				t.Error("UseBucket did not panic")
			}
		}()
		ferry.UseBucket(svc, ferry.Bucket{Name: "once"})
	})
}
