package main

import (
	"github.com/ferrygo/ferry/bench/internal/procstat"
)

// cpuSample is the machine's busy CPU time (all processes) and this
// process's own, at one instant.
type cpuSample = procstat.Sample

func sampleCPU() cpuSample { return procstat.SampleCPU(nil) }

// usage is what happened between two samples: this benchmark has no server
// processes of its own (the broker is in this process).
type usage struct {
	Wall    float64 `json:"wall_sec"`
	Self    float64 `json:"self_cpu_sec"`    // this process: contender, broker, measurement
	Foreign float64 `json:"foreign_cpu_sec"` // every other process
}

// between is the usage from a to b.
func between(a, b cpuSample) usage {
	u := a.To(b)
	return usage{Wall: u.Wall, Self: u.Self, Foreign: u.Foreign}
}

// waitIdle waits until the machine is quiet; see procstat.WaitIdle.
var waitIdle = procstat.WaitIdle
