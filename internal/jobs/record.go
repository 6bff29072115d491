// Package jobs keeps the durable records of Ferry's jobs in a JetStream
// key-value bucket: one key per job holding its state, attempts, progress,
// result and timestamps, changed only by compare-and-set on the key's
// revision, so two writers (a worker finishing a job, a caller cancelling
// it) can never both win. It also keeps the uniqueness markers that make
// an enqueue with a key return the same job within a window, and makes
// job IDs.
//
// The package knows nothing of services or transports: the root package
// runs the jobs and adapts these records to its typed API.
package jobs

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"strings"
	"time"
)

// State is where a job is in its life.
type State string

// The states of a job. Succeeded, Failed and Cancelled are final.
const (
	Queued    State = "queued"
	Scheduled State = "scheduled"
	Running   State = "running"
	Succeeded State = "succeeded"
	Failed    State = "failed"
	Cancelled State = "cancelled"
)

// Final reports whether a job in state s will not run again.
func (s State) Final() bool { return s == Succeeded || s == Failed || s == Cancelled }

// Valid reports whether s is one of the states.
func (s State) Valid() bool {
	switch s {
	case Queued, Scheduled, Running, Succeeded, Failed, Cancelled:
		return true
	}
	return false
}

// Progress is a running job's last reported progress.
type Progress struct {
	Percent float64 `json:"percent"`
	Message string  `json:"message,omitempty"`
}

// Record is a job's durable record, stored as JSON under key "r.<id>".
type Record struct {
	ID          string          `json:"id"`
	Job         string          `json:"job"`
	State       State           `json:"state"`
	Attempts    int             `json:"attempts"`
	MaxAttempts int             `json:"max_attempts"`
	LastError   string          `json:"last_error,omitempty"`
	Progress    *Progress       `json:"progress,omitempty"`
	Result      json.RawMessage `json:"result,omitempty"`
	// CancelRequested is set by a cancel that found the job running: the
	// handler's context is cancelled; the job ends cancelled if the
	// handler gives up, succeeded if it finished anyway.
	CancelRequested bool      `json:"cancel_requested,omitempty"`
	Priority        string    `json:"priority,omitempty"`
	Key             string    `json:"key,omitempty"`
	RequestID       string    `json:"request_id,omitempty"`
	EnqueuedAt      time.Time `json:"enqueued_at"`
	RunAt           time.Time `json:"run_at,omitzero"`
	StartedAt       time.Time `json:"started_at,omitzero"`
	FinishedAt      time.Time `json:"finished_at,omitzero"`
	UpdatedAt       time.Time `json:"updated_at"`

	// Schedule names the schedule that started a periodic job's run.
	Schedule string `json:"schedule,omitempty"`

	// The fields of a workflow run's record (Workflow set); see Run.
	Workflow bool `json:"workflow,omitempty"`
	Run

	// Revision is the key's revision this record was read at or written
	// as; not stored.
	Revision uint64 `json:"-"`
	// stored is the state at Revision: the index key a write moves from.
	stored State
}

// idEncoding spells IDs in lower-case base32 without padding: URL-, subject-
// and key-safe.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns a fresh, unguessable job ID: 128 random bits, 26
// characters.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return idEncoding.EncodeToString(b[:])
}

// EncodeID spells b (16 bytes: a derived ID) as a job ID.
func EncodeID(b []byte) string { return idEncoding.EncodeToString(b) }

// ValidID reports whether id could be a job ID: 26 characters of the ID
// alphabet. Anything else is refused before it reaches a key or subject.
func ValidID(id string) bool {
	if len(id) != 26 {
		return false
	}
	return strings.Trim(id, "abcdefghijklmnopqrstuvwxyz234567") == ""
}

// clone copies r deeply enough that changing the copy's fields, its
// progress included, leaves r as it was.
func (r *Record) clone() *Record {
	c := *r
	if r.Progress != nil {
		p := *r.Progress
		c.Progress = &p
	}
	c.Result = append(json.RawMessage(nil), r.Result...)
	if r.Result == nil {
		c.Result = nil
	}
	if r.Input != nil {
		c.Input = append(json.RawMessage(nil), r.Input...)
	}
	if r.RetryAttempts != nil {
		c.RetryAttempts = make(map[string]int, len(r.RetryAttempts))
		for k, v := range r.RetryAttempts {
			c.RetryAttempts[k] = v
		}
	}
	return &c
}
