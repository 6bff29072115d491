package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// report is everything one invocation measured.
type report struct {
	Machine     machineInfo          `json:"machine"`
	Command     string               `json:"command"`
	Env         []string             `json:"env,omitempty"`      // the FERRY_* and OTEL_* variables set: the Ferry variant
	Duration    string               `json:"duration_per_round"` // per contender
	Slice       string               `json:"slice"`
	Concurrency int                  `json:"concurrency"`
	Rounds      int                  `json:"rounds"`
	Wire        map[string]wireShape `json:"wire"`
	Runs        []runResult          `json:"runs"`
	Summary     []summary            `json:"summary"`
	// Ratio is median(ferry req/s) / median(raw req/s); RoundRatios the
	// same ratio within each round; AddedP50 median(ferry p50) −
	// median(raw p50). Zero when either contender did not run.
	Ratio       float64   `json:"ratio_ferry_raw"`
	RoundRatios []float64 `json:"round_ratios_ferry_raw"`
	// SliceRatios is ferry/raw req/s within each slice (the two ran within
	// a second or so of each other); SliceRatio their median.
	SliceRatios []float64 `json:"slice_ratios_ferry_raw"`
	SliceRatio  float64   `json:"slice_ratio_ferry_raw"`
	// CPURatio is median(raw CPU/op) / median(ferry CPU/op): the throughput
	// ratio a CPU-bound process would reach, insensitive to CPU taken by
	// other processes.
	CPURatio float64       `json:"cpu_ratio_ferry_raw"`
	AddedP50 time.Duration `json:"added_p50_ns"`
	Target   float64       `json:"target_ratio"`
	Pass     bool          `json:"pass"`
}

// summary is one contender's medians over the rounds.
type summary struct {
	Name        string        `json:"name"`
	Note        string        `json:"note"`
	RPS         float64       `json:"rps"`
	RPSRounds   []float64     `json:"rps_rounds"`
	P50         time.Duration `json:"p50_ns"`
	P99         time.Duration `json:"p99_ns"`
	AllocsPerOp float64       `json:"allocs_per_op"`
	BytesPerOp  float64       `json:"bytes_per_op"`
	CPUPerOpUS  float64       `json:"cpu_us_per_op"`
	CPUPercent  float64       `json:"cpu_percent"`
	Errors      int64         `json:"errors"`
}

const targetRatio = 0.8

func median[T int64 | float64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func (r *report) summarise(contenders []contender) {
	byName := map[string]*summary{}
	for _, c := range contenders {
		var rps, allocs, bytes, cpu, cpuPct []float64
		var p50, p99 []time.Duration
		s := summary{Name: c.name, Note: c.note}
		for _, run := range r.Runs {
			if run.Name != c.name {
				continue
			}
			rps = append(rps, run.RPS)
			allocs = append(allocs, run.AllocsPerOp)
			bytes = append(bytes, run.BytesPerOp)
			cpu = append(cpu, run.CPUPerOpUS)
			cpuPct = append(cpuPct, run.CPUPercent)
			p50 = append(p50, run.P50)
			p99 = append(p99, run.P99)
			s.Errors += run.Errors
		}
		s.RPS, s.RPSRounds = median(rps), rps
		s.P50, s.P99 = median(p50), median(p99)
		s.AllocsPerOp, s.BytesPerOp, s.CPUPerOpUS, s.CPUPercent = median(allocs), median(bytes), median(cpu), median(cpuPct)
		r.Summary = append(r.Summary, s)
		byName[c.name] = &r.Summary[len(r.Summary)-1]
	}
	r.Target = targetRatio
	f, raw := byName["ferry"], byName["raw"]
	if f == nil || raw == nil || raw.RPS == 0 {
		return
	}
	r.Ratio = f.RPS / raw.RPS
	r.SliceRatio = median(r.SliceRatios)
	if f.CPUPerOpUS > 0 {
		r.CPURatio = raw.CPUPerOpUS / f.CPUPerOpUS
	}
	r.AddedP50 = f.P50 - raw.P50
	for i := range min(len(f.RPSRounds), len(raw.RPSRounds)) {
		r.RoundRatios = append(r.RoundRatios, f.RPSRounds[i]/raw.RPSRounds[i])
	}
	r.Pass = r.Ratio >= targetRatio && f.Errors == 0 && raw.Errors == 0
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }

// markdown prints the section for bench/README.md.
func (r *report) markdown(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "Machine: %d CPUs (GOMAXPROCS %d), %s, %s, %s.\n\n", m.CPUs, m.GOMAXPROCS, m.CPU, m.Go, m.OS)
	if len(r.Env) > 0 {
		fmt.Fprintf(w, "Ferry's environment: `%s`.\n\n", strings.Join(r.Env, " "))
	}
	fmt.Fprintf(w, "Command: `%s` (%s per contender per round in slices of %s, the contenders alternating every slice; %d callers; %d rounds; medians over the rounds).\n\n",
		r.Command, r.Duration, r.Slice, r.Concurrency, r.Rounds)
	fmt.Fprintln(w, "| contender | req/s (median) | req/s per round | p50 | p99 | allocs/op | B/op | CPU µs/op | process CPU | errors |")
	fmt.Fprintln(w, "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, s := range r.Summary {
		var rounds []string
		for _, x := range s.RPSRounds {
			rounds = append(rounds, fmt.Sprintf("%.0f", x))
		}
		fmt.Fprintf(w, "| %s | %.0f | %s | %s | %s | %.1f | %.0f | %.1f | %.0f%% | %d |\n",
			s.Name, s.RPS, strings.Join(rounds, " / "), us(s.P50), us(s.P99), s.AllocsPerOp, s.BytesPerOp, s.CPUPerOpUS, s.CPUPercent, s.Errors)
	}
	if r.Ratio > 0 {
		var rr []string
		for _, x := range r.RoundRatios {
			rr = append(rr, fmt.Sprintf("%.2f", x))
		}
		verdict := "meets"
		if !r.Pass {
			verdict = "misses"
		}
		fmt.Fprintf(w, "\nThroughput ratio ferry/raw: **%.3f** (per round: %s) — %s the target ≥ %.1f. Added p50: **%s**.\n",
			r.Ratio, strings.Join(rr, ", "), verdict, r.Target, us(r.AddedP50))
		fmt.Fprintf(w, "Median of the %d per-slice ratios: %.3f. CPU per call, raw/ferry: %.3f.\n", len(r.SliceRatios), r.SliceRatio, r.CPURatio)
	}
	fmt.Fprintln(w, "\nOn the wire (one call each, seen by a separate subscriber):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| contender | request headers | request bytes | reply headers | reply bytes |")
	fmt.Fprintln(w, "|---|---|---:|---|---:|")
	for _, s := range r.Summary {
		ws := r.Wire[s.Name]
		fmt.Fprintf(w, "| %s | %s | %d | %s | %d |\n", s.Name, strings.Join(ws.RequestHeaders, ", "), ws.RequestBytes,
			strings.Join(ws.ReplyHeaders, ", "), ws.ReplyBytes)
	}
	fmt.Fprintln(w, "\nContenders:")
	for _, s := range r.Summary {
		fmt.Fprintf(w, "- %s: %s\n", s.Name, s.Note)
	}
}
