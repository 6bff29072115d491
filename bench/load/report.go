package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Scenario headings for the results written by bench/http.sh.
var scenarioTitle = map[string]string{
	"a": "(a) %s requests in flight over already-open keep-alive connections",
	"b": "(b) %s simultaneous new connections, one request each",
	"c": "(c) throughput over keep-alive connections (closed loop)",
}

// thousands formats n as 10,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// Targets, as ratios of a server's median to another's (by default the
// reference, -ref) in the same scenario; a target whose servers were not
// measured is not shown. "items" is the full default stack; its variants
// are named in bench/http.sh.
var targets = []struct {
	scenario, server, metric string
	over                     string // "" for the reference
	limit                    float64
	atMost                   bool
}{
	{"a", "items", "wall", "", 1.10, true},
	{"a", "items", "rss", "", 1.10, true},
	{"b", "items", "wall", "", 1.15, true},
	{"c", "items", "rps", "", 0.85, false},
	{"c", "items-bare", "rps", "", 0.90, false},
	{"c", "items-bare", "rps", "fastapi", 3.0, false},
	{"c", "items-metrics", "rps", "", 0.85, false},
	{"c", "items-tracing", "rps", "", 0.75, false},
}

// subject is the server the tables list right after the reference, with
// its variants ("items-…", "items@rev").
const subject = "items"

// printTables reads every *.json result in dir and prints, per scenario, a
// markdown table of the per-server medians with ratios to ref.
func printTables(w io.Writer, dir, ref string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return err
	}
	// scenario -> server -> runs
	data := map[string]map[string][]Result{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var r Result
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("%s: %v", f, err)
		}
		if r.Scenario == "" || r.Server == "" {
			continue
		}
		if data[r.Scenario] == nil {
			data[r.Scenario] = map[string][]Result{}
		}
		data[r.Scenario][r.Server] = append(data[r.Scenario][r.Server], r)
	}
	if len(data) == 0 {
		return fmt.Errorf("no labelled results in %s", dir)
	}
	scenarios := slices.Sorted(maps.Keys(data))
	medians := map[string]map[string]map[string]float64{} // scenario -> server -> metric -> median
	for _, sc := range scenarios {
		servers := data[sc]
		names := slices.Sorted(maps.Keys(servers))
		slices.SortStableFunc(names, func(a, b string) int { return rank(a, ref) - rank(b, ref) })
		first := servers[names[0]][0]
		title := scenarioTitle[sc]
		switch {
		case title == "":
			title = "scenario " + sc
		case strings.Contains(title, "%s"):
			title = fmt.Sprintf(title, thousands(first.Requests))
		}
		if first.Note != "" {
			title += ", " + first.Note
		}
		nruns := 0
		for _, rs := range servers {
			nruns = max(nruns, len(rs))
		}
		fmt.Fprintf(w, "\n#### %s\n\nMedian of %d runs; ratios are to `%s` measured in the same run.\n\n", title, nruns, ref)
		refRuns := servers[ref]
		medians[sc] = map[string]map[string]float64{}
		if servers[names[0]][0].Mode == "burst" {
			fmt.Fprintf(w, "| server | wall s | p50 ms | p99 ms | non-200 (max) | errors (max) | peak RSS MiB | server CPU s | wall ÷ %s | p99 ÷ %s | RSS ÷ %s |\n", ref, ref, ref)
			fmt.Fprintf(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
			for _, s := range names {
				rs := servers[s]
				wall, p50, p99 := med(rs, fWall), med(rs, fP50), med(rs, fP99)
				rss, cpu := med(rs, fRSS), med(rs, fCPU)
				rw, rp, rr := ratio(wall, med(refRuns, fWall)), ratio(p99, med(refRuns, fP99)), ratio(rss, med(refRuns, fRSS))
				medians[sc][s] = map[string]float64{"wall": wall, "rss": rss}
				fmt.Fprintf(w, "| %s | %.3f | %.0f | %.0f | %d | %d | %.1f | %.2f | %s | %s | %s |\n",
					s, wall, p50, p99, maxInt(rs, func(r Result) int { return r.Non200 + r.BadBody }),
					maxInt(rs, func(r Result) int { return r.Errors }), rss, cpu, fmtRatio(rw), fmtRatio(rp), fmtRatio(rr))
			}
		} else {
			fmt.Fprintf(w, "| server | req/s | p50 ms | p99 ms | non-2xx (max) | errors (max) | server CPU s | req per server CPU-s | req/s ÷ %s | req/CPU-s ÷ %s |\n", ref, ref)
			fmt.Fprintf(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
			for _, s := range names {
				rs := servers[s]
				rps, cpu, rpc := med(rs, fRPS), med(rs, fCPU), med(rs, fRPC)
				r1, r2 := ratio(rps, med(refRuns, fRPS)), ratio(rpc, med(refRuns, fRPC))
				medians[sc][s] = map[string]float64{"rps": rps, "rpc": rpc}
				fmt.Fprintf(w, "| %s | %.0f | %.2f | %.2f | %d | %d | %.2f | %.0f | %s | %s |\n",
					s, rps, med(rs, fP50), med(rs, fP99), maxInt(rs, func(r Result) int { return r.Non200 + r.BadBody }),
					maxInt(rs, func(r Result) int { return r.Errors }), cpu, rpc, fmtRatio(r1), fmtRatio(r2))
			}
		}
		// Spread of the headline figure across runs, to judge the variance.
		fmt.Fprintf(w, "\nPer run (%s): ", map[bool]string{true: "wall s", false: "req/s"}[servers[names[0]][0].Mode == "burst"])
		var parts []string
		for _, s := range names {
			var vs []string
			for _, r := range sortedRuns(servers[s]) {
				if r.Mode == "burst" {
					vs = append(vs, fmt.Sprintf("%.3f [%.2f]", r.WallSec, r.ForeignCPU))
				} else {
					vs = append(vs, fmt.Sprintf("%.0f [%.2f]", r.RPS, r.ForeignCPU))
				}
			}
			parts = append(parts, s+" "+strings.Join(vs, " / "))
		}
		fmt.Fprintf(w, "%s. [CPU-seconds used by other processes on the machine during that run.]\n", strings.Join(parts, "; "))
		if pr := perRunRatios(servers, names, ref); pr != "" {
			fmt.Fprintf(w, "\nPer-run ratios to `%s` (req/s, each server against the reference of the same run): %s.\n", ref, pr)
		}
		if k := kernelSummary(servers, names); k != "" {
			fmt.Fprintf(w, "\nKernel TCP counters during the runs (sum): %s.\n", k)
		}
	}
	// Targets.
	var lines []string
	for _, t := range targets {
		over := t.over
		if over == "" {
			over = ref
		}
		a, b := medians[t.scenario][t.server][t.metric], medians[t.scenario][over][t.metric]
		r := ratio(a, b)
		if r == 0 {
			continue
		}
		pass := (t.atMost && r <= t.limit) || (!t.atMost && r >= t.limit)
		op := map[bool]string{true: "≤", false: "≥"}[t.atMost]
		mark := map[bool]string{true: "met", false: "MISSED"}[pass]
		lines = append(lines, fmt.Sprintf("- (%s) %s %s ÷ %s = %.2f, target %s %.2f: %s", t.scenario, t.server, t.metric, over, r, op, t.limit, mark))
	}
	if len(lines) > 0 {
		fmt.Fprintf(w, "\n#### Targets\n\n%s\n", strings.Join(lines, "\n"))
	}
	return nil
}

func rank(s, ref string) int {
	switch {
	case s == ref:
		return 0
	case s == subject:
		return 1
	case strings.HasPrefix(s, subject+"-"), strings.HasPrefix(s, subject+"@"):
		return 2
	}
	return 3
}

// perRunRatios lists, for throughput results, each server's req/s over
// the reference's in the same run, and their median: the figure least
// moved by a machine whose speed drifts between runs.
func perRunRatios(servers map[string][]Result, names []string, ref string) string {
	refByRun := map[int]float64{}
	for _, r := range servers[ref] {
		if r.Mode == "burst" {
			return ""
		}
		refByRun[r.Run] = r.RPS
	}
	var parts []string
	for _, s := range names {
		if s == ref {
			continue
		}
		var vs []string
		var rs []float64
		for _, r := range sortedRuns(servers[s]) {
			if x := ratio(r.RPS, refByRun[r.Run]); x > 0 {
				vs = append(vs, fmt.Sprintf("%.2f", x))
				rs = append(rs, x)
			}
		}
		if len(rs) == 0 {
			continue
		}
		slices.Sort(rs)
		m := rs[len(rs)/2]
		if len(rs)%2 == 0 {
			m = (rs[len(rs)/2-1] + rs[len(rs)/2]) / 2
		}
		parts = append(parts, fmt.Sprintf("%s %s (median %.2f)", s, strings.Join(vs, " / "), m))
	}
	return strings.Join(parts, "; ")
}

func fWall(r Result) float64 { return r.WallSec }
func fP50(r Result) float64  { return r.LatP50Ms }
func fP99(r Result) float64  { return r.LatP99Ms }
func fRSS(r Result) float64  { return float64(r.ServerHWM) / 1024 }
func fCPU(r Result) float64  { return r.ServerCPU }
func fRPS(r Result) float64  { return r.RPS }
func fRPC(r Result) float64  { return r.ReqPerCPU }

func med(rs []Result, f func(Result) float64) float64 {
	if len(rs) == 0 {
		return 0
	}
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func maxInt(rs []Result, f func(Result) int) int {
	m := 0
	for _, r := range rs {
		m = max(m, f(r))
	}
	return m
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func fmtRatio(r float64) string {
	if r == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", r)
}

func sortedRuns(rs []Result) []Result {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b Result) int { return a.Run - b.Run })
	return rs
}

func kernelSummary(servers map[string][]Result, names []string) string {
	var parts []string
	for _, s := range names {
		sum := map[string]int64{}
		for _, r := range servers[s] {
			for k, v := range r.Kernel {
				sum[k] += v
			}
		}
		if len(sum) == 0 {
			continue
		}
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(sum)) {
			kv = append(kv, fmt.Sprintf("%s=%d", k, sum[k]))
		}
		parts = append(parts, s+": "+strings.Join(kv, " "))
	}
	return strings.Join(parts, "; ")
}
