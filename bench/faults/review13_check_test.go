package main

import "testing"

// TestReview13_CheckerCountsStartedWorkAsDone: every handler of the system
// records its run as its FIRST act (record, then 25 ms of "work"), and the
// checker counts an operation found as soon as a record exists. A record
// therefore proves that an attempt started, not that the job, the event's
// handling or the workflow run finished. The failure a worker kill is
// meant to expose — a job or run whose worker was SIGKILLed mid-attempt
// and that is never redelivered, or that ends failed or dead-lettered, or
// a workflow stuck after its last step — leaves exactly these records and
// is reported as found, lost 0. The checker never reads the jobs' or the
// runs' state (ferry-jobs: succeeded / failed / running) nor the event
// consumer's pending acks, so lost cannot rise for it.
//
// Each case below is the store after such an attempt: the record of the
// killed attempt, and nothing else ever again. A checker able to fail
// would count them lost (or at least not found).
//
// FAILS on the current code: check reports each found, lost 0.
func TestReview13_CheckerCountsStartedWorkAsDone(t *testing.T) {
	const job, run = "aaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbb"
	tests := []struct {
		name string
		ack  ack
		runs runs
	}{
		{"job whose only attempt was killed 10 ms in and never redelivered",
			ack{Op: "o1", Kind: opEnqueue, ID: job}, runs{"job.o1": {job}}},
		{"event whose handler's process died before the ack, never redelivered",
			ack{Op: "o1", Kind: opPublish, Seq: 7}, runs{"event.o1": {"7"}}},
		{"workflow run stuck after its last step's function ran (its result never recorded)",
			ack{Op: "o1", Kind: opStart, ID: run}, runs{"step.o1.one": {run}, "step.o1.two": {run}, "step.o1.three": {run}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := check([]ack{tt.ack}, tt.runs)
			if v.Found != 0 || v.Lost != 1 {
				t.Errorf("check = found %d, lost %d; want found 0, lost 1: a started attempt is not a finished operation", v.Found, v.Lost)
			}
		})
	}
}
