// Package jsbound bounds JetStream's single requests — a publish waiting
// for its acknowledgement, a key-value get or write — by a timeout of
// their own, whatever their context allows. A request or its answer lost
// while a cluster moves a leader (a node killed with it in flight) is
// never answered; without a bound, the caller waits for as long as its
// context lasts — a job's, a subscription handler's, many minutes. With
// one, it fails with a timeout, and the caller's retry (with the same
// message ID, the same revision) is safe.
package jsbound

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Timeout bounds one request.
const Timeout = 10 * time.Second

// bounded returns ctx bounded by Timeout (its own deadline when sooner).
func bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, Timeout)
}

// Wrap returns js with its publishes and its buckets' single requests
// bounded.
func Wrap(js jetstream.JetStream) jetstream.JetStream {
	if _, ok := js.(boundedJS); ok {
		return js
	}
	return boundedJS{js}
}

type boundedJS struct {
	jetstream.JetStream
}

func (b boundedJS) Publish(ctx context.Context, subject string, payload []byte, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	ctx, cancel := bounded(ctx)
	defer cancel()
	return b.JetStream.Publish(ctx, subject, payload, opts...)
}

func (b boundedJS) PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	ctx, cancel := bounded(ctx)
	defer cancel()
	return b.JetStream.PublishMsg(ctx, msg, opts...)
}

func (b boundedJS) KeyValue(ctx context.Context, bucket string) (jetstream.KeyValue, error) {
	return KV(b.JetStream.KeyValue(ctx, bucket))
}

func (b boundedJS) CreateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return KV(b.JetStream.CreateKeyValue(ctx, cfg))
}

func (b boundedJS) UpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return KV(b.JetStream.UpdateKeyValue(ctx, cfg))
}

func (b boundedJS) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return KV(b.JetStream.CreateOrUpdateKeyValue(ctx, cfg))
}

// KV returns kv with its single requests bounded (nil and err as given
// when err is not nil).
func KV(kv jetstream.KeyValue, err error) (jetstream.KeyValue, error) {
	if err != nil || kv == nil {
		return kv, err
	}
	if _, ok := kv.(boundedKV); ok {
		return kv, nil
	}
	return boundedKV{kv}, nil
}

// boundedKV is a bucket whose single requests are bounded; watches and
// listings are the caller's to bound.
type boundedKV struct {
	jetstream.KeyValue
}

func (b boundedKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	ctx, cancel := bounded(ctx)
	defer cancel()
	return b.KeyValue.Get(ctx, key)
}

func (b boundedKV) GetRevision(ctx context.Context, key string, revision uint64) (jetstream.KeyValueEntry, error) {
	ctx, cancel := bounded(ctx)
	defer cancel()
	return b.KeyValue.GetRevision(ctx, key, revision)
}

func (b boundedKV) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	ctx, cancel := bounded(ctx)
	defer cancel()
	return b.KeyValue.Put(ctx, key, value)
}

func (b boundedKV) PutString(ctx context.Context, key string, value string) (uint64, error) {
	ctx, cancel := bounded(ctx)
	defer cancel()
	return b.KeyValue.PutString(ctx, key, value)
}

func (b boundedKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	ctx, cancel := bounded(ctx)
	defer cancel()
	return b.KeyValue.Create(ctx, key, value, opts...)
}

func (b boundedKV) Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error) {
	ctx, cancel := bounded(ctx)
	defer cancel()
	return b.KeyValue.Update(ctx, key, value, revision)
}

func (b boundedKV) Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	ctx, cancel := bounded(ctx)
	defer cancel()
	return b.KeyValue.Delete(ctx, key, opts...)
}

func (b boundedKV) Purge(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	ctx, cancel := bounded(ctx)
	defer cancel()
	return b.KeyValue.Purge(ctx, key, opts...)
}

func (b boundedKV) Status(ctx context.Context) (jetstream.KeyValueStatus, error) {
	ctx, cancel := bounded(ctx)
	defer cancel()
	return b.KeyValue.Status(ctx)
}
