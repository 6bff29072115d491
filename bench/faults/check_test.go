package main

import "testing"

func TestCheck(t *testing.T) {
	const job, run = "aaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbb"
	steps := func(what ...string) runs {
		r := runs{}
		for i, s := range FlowSteps {
			if i < len(what) {
				r["step-done.o1."+s] = []string{what[i]}
			}
		}
		r[stateKey(run)] = []string{"succeeded"}
		return r
	}
	tests := []struct {
		name  string
		ack   ack
		runs  runs
		found int
		lost  int
		extra int
		unabs int
		dedup int
	}{
		{"call found", ack{Op: "o1", Kind: opCall}, runs{"call-done.o1": {"x"}}, 1, 0, 0, 0, 0},
		{"call run twice", ack{Op: "o1", Kind: opCall}, runs{"call-done.o1": {"x", "x"}}, 1, 0, 1, 0, 0},
		{"call lost", ack{Op: "o1", Kind: opCall}, runs{"call-done.o2": {"x"}}, 0, 1, 0, 0, 0},
		{"event found", ack{Op: "o1", Kind: opPublish, Seq: 7}, runs{"event-done.o1": {"7"}}, 1, 0, 0, 0, 0},
		{"event de-duplicated by JetStream", ack{Op: "o1", Kind: opPublish, Seq: 7, Duplicate: true}, runs{"event-done.o1": {"7"}}, 1, 0, 0, 0, 1},
		{"event stored twice", ack{Op: "o1", Kind: opPublish, Seq: 7}, runs{"event-done.o1": {"7", "8"}}, 1, 0, 1, 1, 0},
		{"event lost", ack{Op: "o1", Kind: opPublish, Seq: 7}, runs{}, 0, 1, 0, 0, 0},
		{"job run twice", ack{Op: "o1", Kind: opEnqueue, ID: job}, runs{"job-done.o1": {job, job}, stateKey(job): {"succeeded"}}, 1, 0, 1, 0, 0},
		{"two jobs for one key", ack{Op: "o1", Kind: opEnqueue, ID: job}, runs{"job-done.o1": {job, run}, stateKey(job): {"succeeded"}}, 1, 0, 1, 1, 0},
		{"workflow: every step", ack{Op: "o1", Kind: opStart, ID: run}, steps(run, run, run), 1, 0, 0, 0, 0},
		{"workflow: a step missing", ack{Op: "o1", Kind: opStart, ID: run}, steps(run, run), 0, 1, 0, 0, 0},
		{"job ran to its end, its record not succeeded (failed, or still running)", ack{Op: "o1", Kind: opEnqueue, ID: job}, runs{"job-done.o1": {job}, stateKey(job): {"failed"}}, 0, 1, 0, 0, 0},
		{"workflow: every step, the run not succeeded", ack{Op: "o1", Kind: opStart, ID: run}, func() runs { r := steps(run, run, run); r[stateKey(run)] = []string{"running"}; return r }(), 0, 1, 0, 0, 0},
		{"workflow: a step of another run", ack{Op: "o1", Kind: opStart, ID: run}, steps(run, job, run), 1, 0, 0, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := check([]ack{tt.ack}, tt.runs)
			if v.Acknowledged != 1 || v.Found != tt.found || v.Lost != tt.lost || v.ExtraRuns != tt.extra || v.Unabsorbed != tt.unabs || v.JetStreamDuplicates != tt.dedup {
				t.Errorf("check = %+v (%d de-duplicated); want found %d, lost %d, extra %d, unabsorbed %d, de-duplicated %d",
					v.tally, v.JetStreamDuplicates, tt.found, tt.lost, tt.extra, tt.unabs, tt.dedup)
			}
			if tt.lost > 0 && len(v.Missing) != 1 || tt.unabs > 0 && len(v.Problems) != 1 {
				t.Errorf("missing %v, problems %v", v.Missing, v.Problems)
			}
		})
	}
}
