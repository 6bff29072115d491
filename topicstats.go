package ferry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry/internal/naming"
)

// TopicStats is a topic's stream and its subscriptions' consumers, as the
// broker has them.
type TopicStats struct {
	// Name and Subject are the topic's.
	Name    string `json:"name"`
	Subject string `json:"subject"`
	// Messages and Bytes are what its stream holds; LastSequence is the
	// last event's sequence, LastTime when it was stored.
	Messages     uint64    `json:"messages"`
	Bytes        uint64    `json:"bytes"`
	LastSequence uint64    `json:"last_sequence"`
	LastTime     time.Time `json:"last_time,omitzero"`
	// Consumers are its subscriptions, by service and consumer name.
	Consumers []ConsumerStats `json:"consumers"`
}

// ConsumerStats is one subscription's durable consumer.
type ConsumerStats struct {
	// Service and Consumer name the subscription.
	Service  string `json:"service"`
	Consumer string `json:"consumer"`
	// Pending counts the events not yet delivered (the consumer's lag);
	// AckPending those delivered and not yet acknowledged; Redelivered
	// those among them delivered more than once.
	Pending     uint64 `json:"pending"`
	AckPending  int    `json:"ack_pending"`
	Redelivered int    `json:"redelivered"`
	// Delivered is the last stream sequence delivered, Acknowledged the
	// sequence below which every event was acknowledged.
	Delivered    uint64 `json:"delivered"`
	Acknowledged uint64 `json:"acknowledged"`
	// Paused reports a consumer paused on the broker.
	Paused bool `json:"paused,omitempty"`
}

// ListTopics returns every topic stored on c's broker (the streams named
// ferry-<topic>), sorted by name, each with its subscriptions' consumers.
func ListTopics(ctx context.Context, c *Client) ([]TopicStats, error) {
	js, err := c.jetStream()
	if err != nil {
		return nil, err
	}
	var out []TopicStats
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		if !strings.HasPrefix(name, "ferry-") || name == naming.DeadLetterStream {
			continue
		}
		ts, err := topicStats(ctx, js, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, *ts)
	}
	if err := names.Err(); err != nil {
		return nil, fmt.Errorf("ferry: list topics: %w", err)
	}
	slices.SortFunc(out, func(a, b TopicStats) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// GetTopic returns one topic's stream and consumers. A topic not stored
// on the broker is a 404 *[Error] ("topic_not_found").
func GetTopic(ctx context.Context, c *Client, topic string) (*TopicStats, error) {
	if err := naming.CheckTopicName(topic); err != nil {
		return nil, &Error{Status: http.StatusNotFound, Code: "topic_not_found", Detail: err.Error()}
	}
	js, err := c.jetStream()
	if err != nil {
		return nil, err
	}
	ts, err := topicStats(ctx, js, naming.TopicStream(topic))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, &Error{Status: http.StatusNotFound, Code: "topic_not_found", Detail: "no topic " + quoteID(topic) + " is stored on this broker"}
	}
	return ts, err
}

func topicStats(ctx context.Context, js jetstream.JetStream, stream string) (*TopicStats, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	info := s.CachedInfo()
	ts := &TopicStats{Name: strings.TrimPrefix(stream, "ferry-"), Messages: info.State.Msgs, Bytes: info.State.Bytes,
		LastSequence: info.State.LastSeq, LastTime: info.State.LastTime, Consumers: []ConsumerStats{}}
	for _, subj := range info.Config.Subjects {
		if !strings.HasPrefix(subj, naming.ReplayPrefix+".") {
			ts.Subject = subj
			break
		}
	}
	consumers := s.ListConsumers(ctx)
	for ci := range consumers.Info() {
		cs := ConsumerStats{Service: ci.Config.Metadata["ferry_service"], Consumer: ci.Config.Metadata["ferry_consumer"],
			Pending: ci.NumPending, AckPending: ci.NumAckPending, Redelivered: ci.NumRedelivered,
			Delivered: ci.Delivered.Stream, Acknowledged: ci.AckFloor.Stream, Paused: ci.Paused}
		if cs.Consumer == "" { // not a Ferry subscription's: named as it is
			cs.Consumer = ci.Name
		}
		ts.Consumers = append(ts.Consumers, cs)
	}
	if err := consumers.Err(); err != nil {
		return nil, fmt.Errorf("ferry: topic %s: %w", ts.Name, err)
	}
	slices.SortFunc(ts.Consumers, func(a, b ConsumerStats) int {
		if c := strings.Compare(a.Service, b.Service); c != 0 {
			return c
		}
		return strings.Compare(a.Consumer, b.Consumer)
	})
	return ts, nil
}
