package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// Kinds of operations the driver issues.
const (
	opCall    = "call"
	opPublish = "publish"
	opEnqueue = "enqueue"
	opStart   = "start"
)

var opKinds = []string{opCall, opPublish, opEnqueue, opStart}

// services are the processes a fault may kill besides the broker's.
var services = []string{"api", "events", "jobs", "flows"}

// plannedOp is one operation: its ID (the message ID, job key or run key)
// and kind.
type plannedOp struct {
	ID, Kind string
}

// fault is one SIGKILL: of which process, once the driver has had how
// many operations acknowledged, and for how long the process stays down.
type fault struct {
	At     int
	Target string
	Down   time.Duration
}

// plan is what a seed decides: the operations in order and the faults.
type plan struct {
	Ops    []plannedOp
	Faults []fault
}

// newPlan draws the plan of seed: n operations of mixed kinds and kills
// SIGKILLs spread over 5% to 90% of the acknowledgements, each of the
// broker's process (with probability brokerShare) or of a service's,
// down for 200 ms to 2 s. The same arguments give the same plan.
func newPlan(seed int64, n, kills int, brokerShare float64) plan {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6661756c7473)) // "faults"
	p := plan{Ops: make([]plannedOp, n)}
	for i := range p.Ops {
		p.Ops[i] = plannedOp{ID: fmt.Sprintf("o%06d", i), Kind: opKinds[rng.IntN(len(opKinds))]}
	}
	lo, hi := n/20, max(n/20+1, n*9/10)
	for range kills {
		target := services[rng.IntN(len(services))]
		if rng.Float64() < brokerShare {
			target = "broker"
		}
		p.Faults = append(p.Faults, fault{
			At:     lo + rng.IntN(hi-lo),
			Target: target,
			Down:   200*time.Millisecond + time.Duration(rng.Int64N(int64(1800*time.Millisecond))),
		})
	}
	slices.SortStableFunc(p.Faults, func(a, b fault) int { return a.At - b.At })
	return p
}
