package ferry_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// streamMessages returns how many events a topic's stream holds.
func streamMessages(t *testing.T, h *ferrytest.Host, topic string) uint64 {
	t.Helper()
	js, _ := jetstream.New(h.NATS())
	s, err := js.Stream(context.Background(), "ferry-"+topic)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestPublishValidates: an event that breaks its topic's schema is refused
// with a 422 invalid_event naming the fields, by every publish path, and
// nothing is stored.
func TestPublishValidates(t *testing.T) {
	svc := ferry.MustNew("orders", "1.0.0", ferry.WithoutHTTP(), quiet)
	pub := ferry.NewPublisher(svc, placed)
	h := ferrytest.Start(t, svc)
	ctx := context.Background()

	paths := []struct {
		name    string
		publish func(*OrderPlaced) error
	}{
		{"Topic.Publish", func(e *OrderPlaced) error { _, err := placed.Publish(ctx, h.Client, e); return err }},
		{"Publisher.Publish", func(e *OrderPlaced) error { _, err := pub.Publish(ctx, e); return err }},
		{"Topic.PublishBatch", func(e *OrderPlaced) error {
			_, err := placed.PublishBatch(ctx, h.Client, []*OrderPlaced{{OrderID: "fine", Quantity: 1}, e})
			return err
		}},
		{"Publisher.PublishBatch", func(e *OrderPlaced) error {
			_, err := pub.PublishBatch(ctx, []*OrderPlaced{e, {OrderID: "fine", Quantity: 1}})
			return err
		}},
	}
	events := []struct {
		name      string
		event     OrderPlaced
		locations []string
	}{
		{"empty order ID", OrderPlaced{OrderID: "", Quantity: 1}, []string{"order_id"}},
		{"quantity below minimum", OrderPlaced{OrderID: "o-1", Quantity: 0}, []string{"quantity"}},
		{"both", OrderPlaced{Quantity: -1}, []string{"order_id", "quantity"}},
	}
	for _, p := range paths {
		for _, e := range events {
			t.Run(p.name+"/"+e.name, func(t *testing.T) {
				err := p.publish(&e.event)
				var fe *ferry.Error
				if !errors.As(err, &fe) || fe.Status != http.StatusUnprocessableEntity || fe.Code != "invalid_event" {
					t.Fatalf("publishing an invalid event: %v, want a 422 invalid_event", err)
				}
				if len(fe.Errors) != len(e.locations) {
					t.Fatalf("field errors %v, want %d at %v", fe.Errors, len(e.locations), e.locations)
				}
				for _, loc := range e.locations {
					found := false
					for _, f := range fe.Errors {
						found = found || strings.HasSuffix(f.Location, "."+loc)
					}
					if !found {
						t.Errorf("no field error at %s: %v", loc, fe.Errors)
					}
				}
			})
		}
	}
	if n := streamMessages(t, h, placed.Name); n != 0 {
		t.Errorf("the stream holds %d events, want none", n)
	}
	if _, err := pub.Publish(ctx, &OrderPlaced{OrderID: "o-1", Quantity: 1}); err != nil {
		t.Fatalf("a valid event: %v", err)
	}
}

// TestPublishResults: Publish returns the event's message ID and stream
// sequence, so a retry with that ID is recognised as a duplicate.
func TestPublishResults(t *testing.T) {
	svc := ferry.MustNew("orders", "1.0.0", ferry.WithoutHTTP(), quiet)
	pub := ferry.NewPublisher(svc, placed)
	h := ferrytest.Start(t, svc)
	ctx := context.Background()

	first, err := pub.Publish(ctx, &OrderPlaced{OrderID: "o-1", Quantity: 1})
	if err != nil || first.ID == "" || first.Sequence != 1 || first.Duplicate || first.Err != nil {
		t.Fatalf("first publish: %+v, %v", first, err)
	}
	tests := []struct {
		name      string
		publish   func() (ferry.PublishResult, error)
		id        string
		sequence  uint64
		duplicate bool
	}{
		{"retry with the returned ID", func() (ferry.PublishResult, error) {
			return placed.Publish(ctx, h.Client, &OrderPlaced{OrderID: "o-1", Quantity: 1}, ferry.PublishMessageID(first.ID))
		}, first.ID, 1, true},
		{"caller's ID", func() (ferry.PublishResult, error) {
			return pub.Publish(ctx, &OrderPlaced{OrderID: "o-2", Quantity: 1}, ferry.PublishMessageID("order-o-2"))
		}, "order-o-2", 2, false},
		{"generated ID", func() (ferry.PublishResult, error) {
			return placed.Publish(ctx, h.Client, &OrderPlaced{OrderID: "o-3", Quantity: 1})
		}, "", 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := tt.publish()
			if err != nil {
				t.Fatal(err)
			}
			if tt.id != "" && res.ID != tt.id || res.ID == "" || res.ID == first.ID && tt.id == "" {
				t.Errorf("ID %q, want %q", res.ID, tt.id)
			}
			if res.Sequence != tt.sequence || res.Duplicate != tt.duplicate {
				t.Errorf("result %+v, want sequence %d, duplicate %v", res, tt.sequence, tt.duplicate)
			}
		})
	}
}

// TestPublishBatchRetry: a batch reports each event's ID, sequence and
// error, so the failed events alone are published again with their IDs.
func TestPublishBatchRetry(t *testing.T) {
	small := ferry.Topic[OrderPlaced]{Name: "small", Subject: "test.small", MaxBytes: 4096}
	svc := ferry.MustNew("orders", "1.0.0", ferry.WithoutHTTP(), quiet)
	pub := ferry.NewPublisher(svc, small)
	h := ferrytest.Start(t, svc)
	ctx := context.Background()
	events := make([]*OrderPlaced, 40)
	ids := make([]string, len(events))
	for i := range events {
		events[i] = &OrderPlaced{OrderID: fmt.Sprintf("o-%02d-%s", i, strings.Repeat("x", 100)), Quantity: 1}
		ids[i] = fmt.Sprintf("order-%02d", i)
	}
	ids[7] = "" // generated

	results, err := pub.PublishBatch(ctx, events, ferry.PublishMessageIDs(ids...))
	if !errors.Is(err, ferry.ErrTopicFull) || len(results) != len(events) {
		t.Fatalf("a batch larger than the topic: %d results, %v", len(results), err)
	}
	var failed []*OrderPlaced
	var failedIDs []string
	stored := 0
	for i, r := range results {
		switch {
		case i == 7 && (r.ID == "" || r.ID == ids[6]), i != 7 && r.ID != ids[i]:
			t.Errorf("result %d: ID %q", i, r.ID)
		case r.Err == nil && r.Sequence == 0, r.Err != nil && r.Sequence != 0:
			t.Errorf("result %d: %+v", i, r)
		case r.Err != nil:
			if !errors.Is(r.Err, ferry.ErrTopicFull) {
				t.Errorf("result %d: %v", i, r.Err)
			}
			failed, failedIDs = append(failed, events[i]), append(failedIDs, r.ID)
		default:
			stored++
		}
	}
	if stored == 0 || len(failed) == 0 {
		t.Fatalf("%d stored, %d failed: the test needs both", stored, len(failed))
	}

	// Make room, then retry the failures alone, and the whole batch: the
	// stored events are duplicates.
	js, _ := jetstream.New(h.NATS())
	s, _ := js.Stream(ctx, "ferry-small")
	if _, err := js.UpdateStream(ctx, withMaxBytes(t, s, 1<<20)); err != nil {
		t.Fatal(err)
	}
	again, err := small.PublishBatch(ctx, h.Client, nil)
	if err != nil || len(again) != 0 {
		t.Errorf("an empty batch: %v, %v", again, err)
	}
	again, err = pub.PublishBatch(ctx, failed, ferry.PublishMessageIDs(failedIDs...))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range again {
		if r.ID != failedIDs[i] || r.Duplicate || r.Sequence == 0 || r.Err != nil {
			t.Errorf("retried %d: %+v", i, r)
		}
	}
	whole, err := small.PublishBatch(ctx, h.Client, events, ferry.PublishMessageIDs(resultIDs(results)...))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range whole {
		if !r.Duplicate || r.Sequence == 0 {
			t.Errorf("republished %d: %+v, want a duplicate", i, r)
		}
	}
	if n := streamMessages(t, h, small.Name); n != uint64(len(events)) {
		t.Errorf("the stream holds %d events, want %d", n, len(events))
	}

	// A publisher's batch carries its service's name (the last event is
	// from the retry).
	msg, err := s.GetLastMsgForSubject(ctx, small.Subject)
	if err != nil || msg.Header.Get("Ferry-Source") != "orders" {
		t.Errorf("last event %v, %v: no Ferry-Source", msg, err)
	}
}

func resultIDs(rs []ferry.PublishResult) []string {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.ID
	}
	return ids
}

func withMaxBytes(t *testing.T, s jetstream.Stream, n int64) jetstream.StreamConfig {
	t.Helper()
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cfg := info.Config
	cfg.MaxBytes = n
	return cfg
}
