package ferry

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultBucketMaxBytes bounds a [Bucket] that sets no MaxBytes.
const DefaultBucketMaxBytes = 1 << 30

// Bucket is a JetStream key-value bucket a service keeps its state in, so
// that the service itself holds none and any replica of it may answer:
// a contract value with a stable name, like a [Topic]. The service that
// owns the bucket declares it with [UseBucket]; other programs (a checker,
// an operator's tool) read it with [Bucket.Open].
//
// A bucket is JetStream's, and so are its guarantees: a write is durable
// (on Config.StreamReplicas servers) once it returns, and a write that
// names the revision it read fails instead of overwriting a concurrent
// one — the compare-and-set a service whose replicas share a record
// needs: jetstream.KeyValue's Update fails with
// jetstream.ErrKeyRevisionMismatch, its Create with jetstream.ErrKeyExists
// (compare with errors.Is: a replicated bucket's error code differs).
type Bucket struct {
	// Name is the bucket's name: letters, digits, - and _.
	Name string
	// Description says what the bucket holds.
	Description string
	// History is how many values of each key the bucket keeps (1 to 64;
	// 0 means 1).
	History uint8
	// MaxBytes bounds the bucket's size (0 means DefaultBucketMaxBytes; a
	// bucket made larger by an operator keeps its size).
	MaxBytes int64
}

var bucketName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// check reports a bucket that JetStream would refuse, or one of Ferry's.
func (b Bucket) check() error {
	switch {
	case !bucketName.MatchString(b.Name):
		return fmt.Errorf("bucket name %q: want 1 to 64 letters, digits, - or _", b.Name)
	case len(b.Name) >= 6 && b.Name[:6] == "ferry-":
		return fmt.Errorf("bucket name %q: the prefix ferry- is Ferry's own", b.Name)
	case b.History > 64:
		return fmt.Errorf("bucket %s: History %d: at most 64", b.Name, b.History)
	case b.MaxBytes < 0:
		return fmt.Errorf("bucket %s: MaxBytes %d: negative", b.Name, b.MaxBytes)
	}
	return nil
}

// config is the bucket's JetStream configuration on replicas servers.
func (b Bucket) config(replicas int) jetstream.KeyValueConfig {
	maxBytes := b.MaxBytes
	if maxBytes == 0 {
		maxBytes = DefaultBucketMaxBytes
	}
	return jetstream.KeyValueConfig{
		Bucket:      b.Name,
		Description: b.Description,
		History:     max(1, b.History),
		MaxBytes:    maxBytes,
		Storage:     jetstream.FileStorage,
		Replicas:    max(1, replicas),
	}
}

// Open returns the bucket through c, as it exists: it creates nothing.
// For programs other than the bucket's owner, which uses [Store.KeyValue].
// Its single requests (Get, Put, Create, Update, Delete, …) wait at most
// DefaultBucketTimeout when their context has no deadline.
func (b Bucket) Open(ctx context.Context, c *Client) (jetstream.KeyValue, error) {
	if err := b.check(); err != nil {
		return nil, fmt.Errorf("ferry: %w", err)
	}
	js, err := c.jetStream()
	if err != nil {
		return nil, err
	}
	kv, err := js.KeyValue(ctx, b.Name)
	if err != nil {
		return nil, fmt.Errorf("ferry: bucket %s: %w", b.Name, err)
	}
	return boundedKV{kv}, nil
}

// Store is a service's handle on a bucket it declared with [UseBucket].
type Store struct {
	svc    *Service
	bucket Bucket
	kv     atomic.Pointer[jetstream.KeyValue]
}

// UseBucket declares that svc keeps state in b and returns the handle its
// handlers read and write it through. The host makes the bucket when it
// starts, before the service takes work — with Config.StreamReplicas
// copies, as Config.Provision allows — so a service is never ready
// without its state. It panics on a bucket JetStream would refuse, or one
// declared twice on svc.
func UseBucket(svc *Service, b Bucket) *Store {
	if err := b.check(); err != nil {
		panic(fmt.Sprintf("ferry: UseBucket %s: %v", svc.name, err))
	}
	st := &Store{svc: svc, bucket: b}
	svc.mu.Lock()
	defer svc.mu.Unlock()
	for _, other := range svc.stores {
		if other.bucket.Name == b.Name {
			panic(fmt.Sprintf("ferry: UseBucket %s: bucket %s declared twice", svc.name, b.Name))
		}
	}
	svc.stores = append(svc.stores, st)
	return st
}

// errStoreNotReady is the error of a store used before its host started.
var errStoreNotReady = &Error{Status: http.StatusServiceUnavailable, Code: "store_not_ready",
	Detail: "the service's state is not available yet; try again shortly"}

// KeyValue returns the bucket once the service's host has started (a 503
// *Error before). Its single requests (Get, Put, Create, Update, Delete,
// …) wait at most DefaultBucketTimeout when their context has no
// deadline — a workflow step's has none — so a request lost while a
// cluster moves a leader fails instead of holding the handler forever.
func (st *Store) KeyValue() (jetstream.KeyValue, error) {
	if kv := st.kv.Load(); kv != nil {
		return *kv, nil
	}
	return nil, errStoreNotReady
}

// Bucket returns the bucket the store holds.
func (st *Store) Bucket() Bucket { return st.bucket }

// DefaultBucketTimeout bounds a bucket request whose context has no
// deadline: a request a cluster lost while it moved a leader is answered
// by an error, not waited for forever.
const DefaultBucketTimeout = 5 * time.Second

// boundedKV is a bucket whose single requests get DefaultBucketTimeout
// when their context has no deadline; watches and listings are the
// caller's to bound.
type boundedKV struct {
	jetstream.KeyValue
}

func bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, DefaultBucketTimeout)
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
