package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nuid"

	"github.com/ferrygo/ferry"
)

// The system under fault: five services, each run as its own process. The
// broker service holds the embedded broker (the data directory) and does
// nothing else, so that killing it kills the broker alone; the others join
// it through the data directory. Each handler records every run of itself
// as a new key in the bucket faults-handled (see record), so the checker
// counts runs from the store, not from anyone's memory.

// Op is what every operation carries: the driver's ID of the operation.
type Op struct {
	Op string `json:"op" minLength:"1" maxLength:"64" pattern:"^[a-z0-9-]+$"`
}

// Done is the answer of the call, the job and the workflow.
type Done struct {
	Op string `json:"op"`
}

// Handle is the api service's endpoint, served over NATS.
var Handle = ferry.Endpoint[Op, Done]{
	Service: "api", Name: "handle", Method: http.MethodPost, Path: "/handle", NATSOnly: true,
	Description: "Records that it handled the operation.",
}

// Happened is the topic the driver publishes; the events service
// subscribes to it.
var Happened = ferry.Topic[Op]{Name: "faults-happened", Subject: "faults.happened", Description: "One event per operation."}

// Work is the job kind the jobs service runs.
var Work = ferry.Job[Op, Done]{Name: "faults-work", Description: "Records each run."}

// Flow is the workflow the flows service runs: three steps, each
// recording each run of its function.
var Flow = ferry.Workflow[Op, Done]{Name: "faults-flow", Description: "Three recorded steps."}

// FlowSteps are the workflow's steps, in order.
var FlowSteps = []string{"one", "two", "three"}

// Handled is the bucket every handler records its runs in.
var Handled = ferry.Bucket{Name: "faults-handled", Description: "One key per run of a handler."}

// Kinds of records, the first segment of a key in Handled.
const (
	kindCall  = "call"
	kindEvent = "event"
	kindJob   = "job"
	kindStep  = "step"
)

// Settings of the handlers: short ack waits and handler timeouts, so that
// work a killed process held is redelivered within the checker's settle
// time (an event's idempotency claim, held by a process that died,
// expires after the handler timeout and the ack wait).
// Each handler works a little before recording its end (work), so that a
// kill finds runs cut in their middle, and runs recorded but not yet
// acknowledged.
const (
	ackWait     = 3 * time.Second
	timeout     = 5 * time.Second
	idempotency = 30 * time.Minute
	work        = 25 * time.Millisecond
)

// serve runs the services args select (-service), as ferry.RunSystem does.
func serve(ctx context.Context, args []string) error {
	err := ferry.RunSystem(ctx, flag.NewFlagSet("faults serve", flag.ContinueOnError), args,
		ferry.Part{Name: "broker", New: newBroker},
		ferry.Part{Name: "api", New: newAPI},
		ferry.Part{Name: "events", New: newEvents},
		ferry.Part{Name: "jobs", New: newJobs},
		ferry.Part{Name: "flows", New: newFlows})
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

// newBroker is the service whose process holds the broker; it makes the
// bucket, the topic's stream and nothing else.
func newBroker() (*ferry.Service, error) {
	svc, err := ferry.New("broker", "1.0.0", ferry.WithDescription("Holds the embedded broker."))
	if err != nil {
		return nil, err
	}
	ferry.UseBucket(svc, Handled)
	ferry.NewPublisher(svc, Happened)
	return svc, nil
}

func newAPI() (*ferry.Service, error) {
	svc, err := ferry.New("api", "1.0.0", ferry.WithNATS())
	if err != nil {
		return nil, err
	}
	store := ferry.UseBucket(svc, Handled)
	ferry.Handle(svc, Handle, func(ctx context.Context, in *Op) (*Done, error) {
		if err := record(ctx, store, kindCall, in.Op, ""); err != nil {
			return nil, err
		}
		return &Done{Op: in.Op}, nil
	})
	return svc, nil
}

func newEvents() (*ferry.Service, error) {
	svc, err := ferry.New("events", "1.0.0")
	if err != nil {
		return nil, err
	}
	store := ferry.UseBucket(svc, Handled)
	ferry.Subscribe(svc, Happened, "recorder", func(ctx context.Context, in *Op) error {
		seq := ""
		if e := ferry.EventFromContext(ctx); e != nil {
			seq = strconv.FormatUint(e.Sequence, 10)
		}
		return record(ctx, store, kindEvent, in.Op, seq)
	}, ferry.SubscribeIdempotency(idempotency), ferry.SubscribeAckWait(ackWait), ferry.SubscribeTimeout(timeout),
		ferry.SubscribeBackoff(100*time.Millisecond, time.Second),
		ferry.SubscribeMaxDeliveries(1000))
	return svc, nil
}

func newJobs() (*ferry.Service, error) {
	svc, err := ferry.New("jobs", "1.0.0")
	if err != nil {
		return nil, err
	}
	store := ferry.UseBucket(svc, Handled)
	ferry.HandleJob(svc, Work, func(ctx context.Context, in *Op, _ *ferry.Progress) (*Done, error) {
		if err := record(ctx, store, kindJob, in.Op, ferry.JobFromContext(ctx)); err != nil {
			return nil, err
		}
		return &Done{Op: in.Op}, nil
	}, ferry.JobAckWait(ackWait), ferry.JobBackoff(100*time.Millisecond, time.Second), ferry.JobMaxAttempts(1000))
	return svc, nil
}

func newFlows() (*ferry.Service, error) {
	svc, err := ferry.New("flows", "1.0.0")
	if err != nil {
		return nil, err
	}
	store := ferry.UseBucket(svc, Handled)
	ferry.HandleWorkflow(svc, Flow, func(ctx ferry.WorkflowContext, in *Op) (*Done, error) {
		run := ctx.RunID()
		for _, step := range FlowSteps {
			_, err := ferry.Step(ctx, step, func(sctx context.Context) (bool, error) {
				return true, record(sctx, store, kindStep, in.Op+"."+step, run)
			}, ferry.StepMaxAttempts(1000), ferry.StepBackoff(100*time.Millisecond, time.Second))
			if err != nil {
				return nil, err
			}
		}
		return &Done{Op: in.Op}, nil
	}, ferry.JobAckWait(ackWait), ferry.JobMaxAttempts(1000))
	return svc, nil
}

// record does a handler's work and then stores that it ran to its end: a
// new key "<kind>.<subject>.<what>.<unique>", where kind is the handler's
// kind with "-done" (a run killed before its end leaves no record),
// subject is the operation (and the step) and what is what ran — a job or
// run ID, a stream sequence, "x" for a call — so the checker reads the
// keys alone; the value is the process's ID.
func record(ctx context.Context, store *ferry.Store, kind, subject, what string) error {
	select { // the handler's work, which a kill can cut
	case <-time.After(work):
	case <-ctx.Done():
		return ctx.Err()
	}
	kv, err := store.KeyValue()
	if err != nil {
		return err
	}
	if what == "" {
		what = "x"
	}
	key := kind + doneSuffix + "." + subject + "." + what + "." + nuid.Next()
	if _, err := kv.Create(ctx, key, []byte(strconv.Itoa(os.Getpid()))); err != nil {
		return fmt.Errorf("record %s %s: %w", kind, subject, err)
	}
	return nil
}

// doneSuffix marks the record of a run that reached its end.
const doneSuffix = "-done"
