package ferrytest

import (
	"context"
	"strconv"
	"testing"

	"github.com/ferrygo/ferry"
)

// RunJobs runs a worker of job in the test: a service named
// "<job name>-worker" that binds handler with opts, hosted by [Start]. It
// returns the host; enqueue with its Client.
//
//	h := ferrytest.RunJobs(t, reportsapi.Render, render)
//	id, err := reportsapi.Render.Enqueue(ctx, h.Client, &in)
//	rec := ferrytest.WaitJob(t, h, reportsapi.Render, id)
func RunJobs[In, Out any](t testing.TB, job ferry.Job[In, Out], handler ferry.JobHandler[In, Out], opts ...ferry.JobOption) *Host {
	t.Helper()
	svc, err := ferry.New(job.Name+"-worker", "0.0.0", ferry.WithoutHTTP())
	if err != nil {
		t.Fatalf("ferrytest: RunJobs %s: %v", job.Name, err)
	}
	ferry.HandleJob(svc, job, handler, opts...)
	return Start(t, svc)
}

// WaitJob waits until the job with id has ended — succeeded, failed or
// cancelled — and returns its record, failing the test if it has not
// within DefaultWait (or cannot be read).
func WaitJob[In, Out any](t testing.TB, h *Host, job ferry.Job[In, Out], id string) *ferry.JobRecord[Out] {
	t.Helper()
	var rec *ferry.JobRecord[Out]
	Eventually(t, func() bool {
		r, err := job.Get(context.Background(), h.Client, id)
		if err == nil {
			rec = r
		}
		return err == nil && r.State.Final()
	}, "job %s of %s ends (last read: %v)", id, job.Name, recordOrNil(&rec))
	return rec
}

// WaitJobState waits until the job with id is in state and returns its
// record, failing the test if it is not within DefaultWait — or if the job
// ends in another state first.
func WaitJobState[In, Out any](t testing.TB, h *Host, job ferry.Job[In, Out], id string, state ferry.JobState) *ferry.JobRecord[Out] {
	t.Helper()
	var rec *ferry.JobRecord[Out]
	Eventually(t, func() bool {
		r, err := job.Get(context.Background(), h.Client, id)
		if err != nil {
			return false
		}
		rec = r
		if r.State != state && r.State.Final() {
			t.Fatalf("ferrytest: job %s of %s ended %s (last error %q); want %s", id, job.Name, r.State, r.LastError, state)
		}
		return r.State == state
	}, "job %s of %s is %s (last read: %v)", id, job.Name, state, recordOrNil(&rec))
	return rec
}

// recordOrNil prints the record a pointer points at when the message is
// formatted (after polling), not when the call is made.
func recordOrNil[Out any](p **ferry.JobRecord[Out]) any { return lazyRecord[Out]{p} }

type lazyRecord[Out any] struct{ p **ferry.JobRecord[Out] }

func (l lazyRecord[Out]) String() string {
	if *l.p == nil {
		return "none"
	}
	r := *l.p
	return string(r.State) + " after " + itoa(r.Attempts) + " attempts, last error " + quote(r.LastError)
}

func itoa(n int) string { return strconv.Itoa(n) }

func quote(s string) string { return strconv.Quote(s) }

// RunWorkflow runs a worker of wf in the test: a service named
// "<workflow name>-worker" that binds fn with opts, hosted by [Start]. It
// returns the host; start runs with its Client.
func RunWorkflow[In, Out any](t testing.TB, wf ferry.Workflow[In, Out], fn ferry.WorkflowFunc[In, Out], opts ...ferry.JobOption) *Host {
	t.Helper()
	svc, err := ferry.New(wf.Name+"-worker", "0.0.0", ferry.WithoutHTTP())
	if err != nil {
		t.Fatalf("ferrytest: RunWorkflow %s: %v", wf.Name, err)
	}
	ferry.HandleWorkflow(svc, wf, fn, opts...)
	return Start(t, svc)
}

// WaitRun waits until the run of wf with id has ended and returns its
// record, failing the test if it has not within DefaultWait.
func WaitRun[In, Out any](t testing.TB, h *Host, wf ferry.Workflow[In, Out], id string) *ferry.JobRecord[Out] {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultWait)
	defer cancel()
	rec, err := wf.Wait(ctx, h.Client, id)
	if err != nil {
		last, _ := wf.Get(context.Background(), h.Client, id)
		t.Fatalf("ferrytest: run %s of %s has not ended: %v (last read: %v)", id, wf.Name, err, recordOrNil(&last))
	}
	return rec
}
