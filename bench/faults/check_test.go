package main

import "testing"

func TestCheck(t *testing.T) {
	const job, run = "aaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbb"
	steps := func(what ...string) runs {
		r := runs{}
		for i, s := range FlowSteps {
			if i < len(what) {
				r["step.o1."+s] = []string{what[i]}
			}
		}
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
		{"call found", ack{Op: "o1", Kind: opCall}, runs{"call.o1": {"x"}}, 1, 0, 0, 0, 0},
		{"call run twice", ack{Op: "o1", Kind: opCall}, runs{"call.o1": {"x", "x"}}, 1, 0, 1, 0, 0},
		{"call lost", ack{Op: "o1", Kind: opCall}, runs{"call.o2": {"x"}}, 0, 1, 0, 0, 0},
		{"event found", ack{Op: "o1", Kind: opPublish, Seq: 7}, runs{"event.o1": {"7"}}, 1, 0, 0, 0, 0},
		{"event de-duplicated by JetStream", ack{Op: "o1", Kind: opPublish, Seq: 7, Duplicate: true}, runs{"event.o1": {"7"}}, 1, 0, 0, 0, 1},
		{"event stored twice", ack{Op: "o1", Kind: opPublish, Seq: 7}, runs{"event.o1": {"7", "8"}}, 1, 0, 1, 1, 0},
		{"event lost", ack{Op: "o1", Kind: opPublish, Seq: 7}, runs{}, 0, 1, 0, 0, 0},
		{"job run twice", ack{Op: "o1", Kind: opEnqueue, ID: job}, runs{"job.o1": {job, job}}, 1, 0, 1, 0, 0},
		{"two jobs for one key", ack{Op: "o1", Kind: opEnqueue, ID: job}, runs{"job.o1": {job, run}}, 1, 0, 1, 1, 0},
		{"workflow: every step", ack{Op: "o1", Kind: opStart, ID: run}, steps(run, run, run), 1, 0, 0, 0, 0},
		{"workflow: a step missing", ack{Op: "o1", Kind: opStart, ID: run}, steps(run, run), 0, 1, 0, 0, 0},
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
