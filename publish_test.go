package ferry_test

import (
	"context"
	"errors"
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
		{"Topic.Publish", func(e *OrderPlaced) error { return placed.Publish(ctx, h.Client, e) }},
		{"Publisher.Publish", func(e *OrderPlaced) error { return pub.Publish(ctx, e) }},
		{"Topic.PublishBatch", func(e *OrderPlaced) error {
			return placed.PublishBatch(ctx, h.Client, []*OrderPlaced{{OrderID: "fine", Quantity: 1}, e})
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
	if err := pub.Publish(ctx, &OrderPlaced{OrderID: "o-1", Quantity: 1}); err != nil {
		t.Fatalf("a valid event: %v", err)
	}
}
