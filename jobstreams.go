package ferry

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry/internal/broker"
	"github.com/ferrygo/ferry/internal/jobs"
	"github.com/ferrygo/ferry/internal/naming"
	"github.com/ferrygo/ferry/internal/provision"
)

// DefaultJobBucketMaxBytes is the size limit of the bucket of job records.
const DefaultJobBucketMaxBytes = 1 << 30

// jobStreamConfig is a job kind's stream: a work queue (a job's message is
// removed once a worker acknowledges it), file storage, and message
// schedules, which hold a job until its time. It has no size limit:
// JetStream allows message schedules only on streams that discard old
// messages at their limits, and a queue must never drop a job; it is
// bounded by the account's storage, past which Enqueue fails.
func jobStreamConfig(name string, replicas int, maxMsgSize int32) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              naming.JobStream(name),
		Description:       "Ferry job " + name,
		Subjects:          naming.JobSubjects(name),
		Retention:         jetstream.WorkQueuePolicy,
		Storage:           jetstream.FileStorage,
		Discard:           jetstream.DiscardOld,
		MaxBytes:          -1,
		MaxMsgSize:        maxMsgSize,
		Replicas:          replicas,
		Duplicates:        2 * time.Minute,
		AllowMsgSchedules: true,
	}
}

// jobBucketConfig is the bucket of every job's record: one revision per
// key, and per-key expiry (finished records and uniqueness markers).
func jobBucketConfig(replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:         naming.JobBucket,
		Description:    "Ferry: the records of jobs (state, attempts, progress, result) and their uniqueness keys",
		Storage:        jetstream.FileStorage,
		Replicas:       replicas,
		MaxBytes:       DefaultJobBucketMaxBytes,
		LimitMarkerTTL: time.Second,
	}
}

// stepBucketConfig is the bucket of workflow runs' steps and signals.
func stepBucketConfig(replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:         naming.StepBucket,
		Description:    "Ferry: the recorded steps, compensations and signals of workflow runs",
		Storage:        jetstream.FileStorage,
		Replicas:       replicas,
		MaxBytes:       DefaultJobBucketMaxBytes,
		LimitMarkerTTL: time.Second,
	}
}

// clientJobs is what a connection's clients know of jobs: the record
// store, and which job kinds' streams are known to exist.
type clientJobs struct {
	mu      sync.Mutex
	store   *jobs.Store
	streams map[string]bool
}

// errJobsServerTooOld is the error against a server without message
// schedules.
func errJobsServerTooOld(version string) error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "broker_too_old",
		Detail: fmt.Sprintf("jobs need nats-server %s or newer (message schedules); the broker is %s", broker.JobsMinServerVersion, version)}
}

// jobStore returns the record store, creating the bucket when it does not
// exist yet.
func (c *Client) jobStore(ctx context.Context) (*jobs.Store, error) {
	js, err := c.jetStream()
	if err != nil {
		return nil, err
	}
	c.js.jobs.mu.Lock()
	defer c.js.jobs.mu.Unlock()
	if s := c.js.jobs.store; s != nil {
		return s, nil
	}
	if v := c.nc.ConnectedServerVersion(); !broker.AtLeast(v, broker.JobsMinServerVersion) {
		return nil, errJobsServerTooOld(v)
	}
	kv, err := provision.Bucket(ctx, js, jobBucketConfig(c.replicas()), provision.ModeOwner, provision.User)
	if err != nil {
		return nil, err
	}
	steps, err := provision.Bucket(ctx, js, stepBucketConfig(c.replicas()), provision.ModeOwner, provision.User)
	if err != nil {
		return nil, err
	}
	c.js.jobs.store = jobs.NewStore(js, kv, steps)
	return c.js.jobs.store, nil
}

// ensureJobStream creates a job kind's stream when it does not exist yet
// (its worker service owns it; an enqueue before the worker first started
// creates it as declared).
func (c *Client) ensureJobStream(ctx context.Context, name string) error {
	c.js.jobs.mu.Lock()
	known := c.js.jobs.streams[name]
	c.js.jobs.mu.Unlock()
	if known {
		return nil
	}
	js, err := c.jetStream()
	if err != nil {
		return err
	}
	if err := provision.Stream(ctx, js, jobStreamConfig(name, c.replicas(), 0), provision.ModeOwner, provision.User, discardLogger); err != nil {
		return err
	}
	c.js.jobs.mu.Lock()
	if c.js.jobs.streams == nil {
		c.js.jobs.streams = map[string]bool{}
	}
	c.js.jobs.streams[name] = true
	c.js.jobs.mu.Unlock()
	return nil
}

// discardLogger drops what a client's provisioning would log: a client
// has no logger, and the stream's owner reports drift.
var discardLogger = slog.New(slog.DiscardHandler)
