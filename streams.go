package ferry

import (
	"reflect"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry/internal/naming"
)

// topicDecl is what a service declares of a topic, without its type
// parameter.
type topicDecl struct {
	name, subject, description string
	maxAge                     time.Duration
	maxBytes                   int64
	payload                    reflect.Type
}

func declOf[T any](t Topic[T]) topicDecl {
	return topicDecl{name: t.Name, subject: t.Subject, description: t.Description, maxAge: t.MaxAge,
		maxBytes: t.MaxBytes, payload: reflect.TypeFor[T]()}
}

// sameStream reports whether two declarations describe the same stream.
func (d topicDecl) sameStream(o topicDecl) bool {
	return d.name == o.name && d.subject == o.subject && d.maxAge == o.maxAge && d.maxBytes == o.maxBytes && d.payload == o.payload
}

// streamConfig is the JetStream stream of a topic: limits retention (an
// event stays for every subscription, present or future), file storage,
// discard-new at the size limit (publishers get an error; nothing stored
// vanishes), and the replay subjects that reach one consumer.
func (d topicDecl) streamConfig(replicas int, maxMsgSize int32) jetstream.StreamConfig {
	maxBytes := d.maxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultTopicMaxBytes
	}
	return jetstream.StreamConfig{
		Name:        naming.TopicStream(d.name),
		Description: "Ferry topic " + d.name,
		Subjects:    []string{d.subject, naming.ReplayWildcard(d.name)},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardNew,
		MaxBytes:    maxBytes,
		MaxAge:      d.maxAge,
		MaxMsgSize:  maxMsgSize,
		Replicas:    replicas,
		Duplicates:  2 * time.Minute,
	}
}

// deadLetterMaxMsgSize is the dead-letter stream's message size limit:
// the largest event any service may have (MaxMaxBody) with room for the
// headers, so no body limit raised later makes a dead letter too large.
const deadLetterMaxMsgSize = MaxMaxBody + maxHeaderBytes

// deadLetterStreamConfig is the stream of dead letters: kept until removed
// (by replay tooling or by hand), discard-new at 1 GiB so a full stream
// makes dead-lettering fail (the message then stays in its topic, retried)
// rather than losing older dead letters.
func deadLetterStreamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        naming.DeadLetterStream,
		Description: "Ferry dead letters: events a subscription could not handle",
		Subjects:    []string{naming.DeadLetterPrefix + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardNew,
		MaxBytes:    DefaultTopicMaxBytes,
		MaxMsgSize:  deadLetterMaxMsgSize,
		Replicas:    replicas,
		Duplicates:  2 * time.Minute,
	}
}
