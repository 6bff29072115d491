package ferry_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// R2Labelled is a payload with a map and a slice, both left nil.
type R2Labelled struct {
	ID     string            `json:"id"`
	Tags   []string          `json:"tags"`
	Labels map[string]string `json:"labels"`
}

var r2Labelled = ferry.Topic[R2Labelled]{Name: "r2-labelled", Subject: "test.r2.labelled"}

// Found by review: Publish rejects an event whose map field is nil (the zero value
// of the declared payload type): json.Marshal writes "labels": null, and
// the payload schema calls the map a non-nullable object, so the event is
// a 422 invalid_event ("event.labels: expected object"), while a nil slice
// in the same event passes. Valid Go events of the topic's own type cannot
// be published, and a producer in another language sending null is
// dead-lettered by every subscriber.
func TestPublishAcceptsNilMap(t *testing.T) {
	svc := ferry.MustNew("labeller", "1.0.0", ferry.WithoutHTTP(), quiet)
	pub := ferry.NewPublisher(svc, r2Labelled)
	ferrytest.Start(t, svc)
	if _, err := pub.Publish(context.Background(), &R2Labelled{ID: "nil-slice-only", Labels: map[string]string{}}); err != nil {
		t.Fatalf("a nil slice: %v", err)
	}
	if _, err := pub.Publish(context.Background(), &R2Labelled{ID: "nil-map"}); err != nil {
		t.Errorf("publishing the zero value's nil map was refused: %v", err)
	}
}

// Found by review: every ListDeadLetters call creates an ordered (ephemeral)
// consumer on the dead-letter stream and never deletes it; it lingers for
// nats.go's 5-minute inactivity threshold. A dead-letter page polled by a
// dashboard (examples/events exposes /dead-letters) keeps hundreds of
// consumers on the stream, and with an account or stream consumer limit
// the listing (and the subscriptions' own consumers) start failing.
func TestListDeadLettersLeavesNoConsumers(t *testing.T) {
	svc := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.Subscribe(svc, placed, "ship", func(context.Context, *OrderPlaced) error { return nil })
	h := ferrytest.Start(t, svc)
	const calls = 20
	for i := range calls {
		if _, err := ferry.ListDeadLetters(context.Background(), h.Client, ferry.DeadLetterFilter{}, 10); err != nil {
			t.Fatalf("listing %d: %v", i, err)
		}
	}
	js, _ := jetstream.New(h.NATS())
	s, err := js.Stream(context.Background(), "ferry-deadletters")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Consumers; n > 0 {
		var names []string
		for name := range s.ConsumerNames(context.Background()).Name() {
			names = append(names, name)
		}
		t.Errorf("after %d listings the dead-letter stream has %d consumers left behind: %s", calls, n, fmt.Sprint(names[:min(3, len(names))]))
	}
}
