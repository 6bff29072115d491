package ferry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ferrygo/ferry/internal/jobs"
)

// DefaultIdempotencyWindow is how long an Idempotency-Key sent to an
// [Accept] endpoint returns the same job.
const DefaultIdempotencyWindow = 24 * time.Hour

// jobEventsHeartbeat is how often a job's event stream sends a comment
// while nothing changes, so proxies keep it open.
const jobEventsHeartbeat = 15 * time.Second

// JobRequest is the input of an endpoint that starts a job ([Accept]):
// the job's input is the request body.
type JobRequest[In any] struct {
	// IdempotencyKey makes a retried request start one job: a second
	// request with the same key and the same input, from the same caller,
	// within the window, answers the first job.
	IdempotencyKey string `header:"Idempotency-Key" maxLength:"255" doc:"A retried request with the same key and body, from the same caller, starts no second job: it answers the first."`
	Body           In
}

// JobAccepted is the answer of an endpoint that started a job: 202
// Accepted, the job's URL in Location, and its record.
type JobAccepted[Out any] struct {
	Location string `header:"Location" doc:"The job's URL: GET it for its state and result, GET …/events to follow it, DELETE it to cancel it."`
	Body     *JobRecord[Out]
}

// jobRecordOutput is the answer of the job resources.
type jobRecordOutput[Out any] struct {
	Body *JobRecord[Out]
}

// jobIDInput addresses one job.
type jobIDInput struct {
	JobID string `path:"job_id" minLength:"26" maxLength:"26" pattern:"^[a-z2-7]{26}$" doc:"The job's ID."`
}

// AcceptOption adjusts an [Accept] endpoint.
type AcceptOption func(*acceptOptions)

type acceptOptions struct {
	path    string
	window  time.Duration
	enqueue []EnqueueOption
}

// AcceptJobPath sets where the job resources are served (default
// "/jobs": GET and DELETE /jobs/{job_id}, GET /jobs/{job_id}/events). A
// service that accepts two job kinds gives the second its own path.
func AcceptJobPath(prefix string) AcceptOption {
	return func(o *acceptOptions) { o.path = strings.TrimSuffix(prefix, "/") }
}

// AcceptIdempotencyWindow sets how long an Idempotency-Key returns the
// same job (default 24h).
func AcceptIdempotencyWindow(d time.Duration) AcceptOption {
	return func(o *acceptOptions) { o.window = d }
}

// AcceptEnqueueOptions sets options of every job the endpoint enqueues
// (attempts, timeout, a delay).
func AcceptEnqueueOptions(opts ...EnqueueOption) AcceptOption {
	return func(o *acceptOptions) { o.enqueue = append(o.enqueue, opts...) }
}

// Accept binds ep as an endpoint that starts a job: it enqueues the
// request body as job's input and answers 202 Accepted at once, with the
// job's URL in Location and its record, instead of holding the caller
// while the work runs. It also serves the job's resources, with ep's Auth
// (a caller who may start the job may follow and cancel it):
//
//   - GET /jobs/{job_id}: the record — state, attempts, progress, and the
//     typed result once it succeeded;
//   - GET /jobs/{job_id}/events: Server-Sent Events, the current record
//     first, then each change, until the job ends (or the server drains);
//   - DELETE /jobs/{job_id}: cancel it ([Job.Cancel]); the record after.
//
// The job resources answer only jobs of this kind (404 otherwise). A
// service that runs the job binds it with [HandleJob]; it may be this
// service or another. Over NATS (WithNATS), the endpoint and the GET and
// DELETE resources are served like any endpoint; the event stream is
// HTTP only.
//
// Accept panics as [Handle] does, and when two job kinds share a job
// path on one service.
func Accept[In, Out any](svc *Service, ep Endpoint[JobRequest[In], JobAccepted[Out]], job Job[In, Out], opts ...AcceptOption) {
	if err := job.check(); err != nil {
		panic(fmt.Sprintf("ferry: Accept %s.%s: %v", svc.name, ep.Name, err))
	}
	o := acceptOptions{path: "/jobs", window: DefaultIdempotencyWindow}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.path == "" || o.path[0] != '/' || o.window < time.Second {
		panic(fmt.Sprintf("ferry: Accept %s.%s: the job path must start with / and the idempotency window be at least 1s", svc.name, ep.Name))
	}
	if ep.DefaultStatus == 0 {
		ep.DefaultStatus = http.StatusAccepted
	}
	svc.acceptJobs(job.docTopic())
	Handle(svc, ep, func(ctx context.Context, in *JobRequest[In]) (*JobAccepted[Out], error) {
		c := svc.Client()
		enqueue := o.enqueue
		if in.IdempotencyKey != "" {
			enqueue = append(enqueue[:len(enqueue):len(enqueue)], EnqueueKey(callerKey(ctx, in.IdempotencyKey, &in.Body), o.window))
		}
		id, err := job.Enqueue(ctx, c, &in.Body, enqueue...)
		if err != nil {
			return nil, err
		}
		rec, err := job.Get(ctx, c, id)
		if err != nil {
			return nil, err
		}
		return &JobAccepted[Out]{Location: o.path + "/" + id, Body: rec}, nil
	})
	if prev, ok := svc.jobPaths(o.path, job.Name); ok {
		if prev != job.Name {
			panic(fmt.Sprintf("ferry: Accept %s.%s: job path %s already serves job %s; give job %s its own with AcceptJobPath",
				svc.name, ep.Name, o.path, prev, job.Name))
		}
		return // its resources are served
	}
	serveJobResources(svc, job, o.path, ep)
}

// callerKey scopes an idempotency key to the caller and the request: two
// authenticated callers who pick the same key never share a job, and
// neither do two requests with different inputs (for anonymous callers,
// the only scope there is: one who sends another's key and input learns
// nothing it did not send).
func callerKey[In any](ctx context.Context, key string, in *In) string {
	body, _ := json.Marshal(in)
	sum := sha256.Sum256(body)
	subject := ""
	if p := PrincipalFromContext(ctx); p != nil {
		subject = p.Subject
	}
	return subject + "\x00" + hex.EncodeToString(sum[:]) + "\x00" + key
}

// serveJobResources binds the GET, DELETE and events resources of a job
// kind under prefix, with the starting endpoint's auth and tags.
func serveJobResources[In, Out, ReqIn, ReqOut any](svc *Service, job Job[In, Out], prefix string, start Endpoint[ReqIn, ReqOut]) {
	suffix := ""
	if prefix != "/jobs" {
		suffix = "-" + job.Name
	}
	item := prefix + "/{job_id}"
	Handle(svc, Endpoint[jobIDInput, jobRecordOutput[Out]]{Service: svc.name, Name: "get-job" + suffix, Method: http.MethodGet, Path: item,
		Summary: "Get a " + job.Name + " job", Description: "The job's record: state, attempts, progress, and its result once it succeeded.",
		Tags: start.Tags, Auth: start.Auth},
		func(ctx context.Context, in *jobIDInput) (*jobRecordOutput[Out], error) {
			rec, err := job.Get(ctx, svc.Client(), in.JobID)
			if err != nil {
				return nil, err
			}
			return &jobRecordOutput[Out]{Body: rec}, nil
		})
	Handle(svc, Endpoint[jobIDInput, jobRecordOutput[Out]]{Service: svc.name, Name: "cancel-job" + suffix, Method: http.MethodDelete, Path: item,
		Summary: "Cancel a " + job.Name + " job", Description: "A queued or scheduled job never starts; a running one has its context cancelled and ends cancelled, or succeeded if it finished anyway. The record after the cancel.",
		Tags: start.Tags, Auth: start.Auth},
		func(ctx context.Context, in *jobIDInput) (*jobRecordOutput[Out], error) {
			rec, err := job.Cancel(ctx, svc.Client(), in.JobID)
			if err != nil {
				return nil, err
			}
			return &jobRecordOutput[Out]{Body: rec}, nil
		})
	Handle(svc, Endpoint[jobIDInput, huma.StreamResponse]{Service: svc.name, Name: "job-events" + suffix, Method: http.MethodGet, Path: item + "/events",
		Summary: "Follow a " + job.Name + " job", Description: "Server-Sent Events: the job's record now (event named by its state), then each change, until the job ends; the stream also ends when the server drains (reconnect to resume).",
		Tags: start.Tags, Auth: start.Auth, HTTPOnly: true, Streaming: true,
		Operation: func(op *huma.Operation) {
			schema := svc.api.OpenAPI().Components.Schemas.Schema(reflect.TypeFor[JobRecord[Out]](), true, "")
			op.Responses = map[string]*huma.Response{"200": {Description: "The job's record at each change, as text/event-stream.",
				Content: map[string]*huma.MediaType{"text/event-stream": {Schema: schema}}}}
		}},
		func(ctx context.Context, in *jobIDInput) (*huma.StreamResponse, error) {
			c := svc.Client()
			if _, err := job.Get(ctx, c, in.JobID); err != nil {
				return nil, err // 404 before the stream starts
			}
			store, err := c.jobStore(ctx)
			if err != nil {
				return nil, err
			}
			return &huma.StreamResponse{Body: func(hctx huma.Context) { streamJob[Out](hctx, store, in.JobID) }}, nil
		})
}

// streamJob writes a job's record as Server-Sent Events: the current one,
// then each change, until the job ends, the client leaves or the server
// drains.
func streamJob[Out any](hctx huma.Context, store *jobs.Store, id string) {
	ctx := hctx.Context()
	hctx.SetHeader("Content-Type", "text/event-stream")
	hctx.SetHeader("Cache-Control", "no-cache")
	hctx.SetHeader("X-Accel-Buffering", "no")
	hctx.SetStatus(http.StatusOK)
	w := hctx.BodyWriter()
	flush := func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	watcher, err := store.Watch(ctx, id)
	if err != nil {
		_, _ = io.WriteString(w, "event: error\ndata: {\"detail\":\"the job's records are unavailable; reconnect\"}\n\n")
		return
	}
	defer func() { _ = watcher.Stop() }()
	heartbeat := time.NewTicker(jobEventsHeartbeat)
	defer heartbeat.Stop()
	_, _ = io.WriteString(w, ": following job "+id+"\n\n")
	flush()
	for {
		select {
		case <-ctx.Done():
			return
		case <-Draining(ctx):
			return
		case <-heartbeat.C:
			if _, err := io.WriteString(w, ": waiting\n\n"); err != nil {
				return
			}
			flush()
		case e, ok := <-watcher.Updates():
			if !ok {
				return
			}
			if e == nil {
				continue // the end of what was stored: live changes follow
			}
			stored, err := jobs.Decode(e)
			if err != nil || stored == nil {
				return // removed, or unreadable: nothing more to follow
			}
			rec, err := recordOf[Out](stored)
			if err != nil {
				return
			}
			data, _ := json.Marshal(rec)
			if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", stored.Revision, rec.State, data); err != nil {
				return
			}
			flush()
			if rec.State.Final() {
				return
			}
		}
	}
}
