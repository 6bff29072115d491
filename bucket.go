package ferry

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry/internal/jsbound"
)

// DefaultBucketMaxBytes bounds a [Bucket] that sets no MaxBytes.
const DefaultBucketMaxBytes = 1 << 30

// BucketRequestTimeout bounds one request to a bucket, as it bounds every
// JetStream request Ferry makes (publishes included).
const BucketRequestTimeout = jsbound.Timeout

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
// BucketRequestTimeout, whatever their context allows.
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
	return kv, nil
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
// …) wait at most BucketRequestTimeout, whatever their context allows —
// a job's lasts many minutes, a workflow step's has no deadline — so a
// request lost while a cluster moves a leader fails (retry it) instead of
// holding the handler.
func (st *Store) KeyValue() (jetstream.KeyValue, error) {
	if kv := st.kv.Load(); kv != nil {
		return *kv, nil
	}
	return nil, errStoreNotReady
}

// Bucket returns the bucket the store holds.
func (st *Store) Bucket() Bucket { return st.bucket }
