package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
)

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// describeMachine names the machine and the software measured.
func describeMachine() map[string]string {
	env := map[string]string{
		"nproc":      strconv.Itoa(runtime.NumCPU()),
		"gomaxprocs": strconv.Itoa(runtime.GOMAXPROCS(0)),
		"go":         runtime.Version(),
		"os/arch":    runtime.GOOS + "/" + runtime.GOARCH,
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				env["cpu"] = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/nats-io/nats.go", "github.com/nats-io/nats-server/v2":
				env[d.Path] = d.Version
			}
		}
	}
	return env
}

// printTables prints one table per sync mode: each contender's median
// rate, the ratio of the medians, the per-round ratios (contenders paired
// within a round), and the CPU this process used per event.
func printTables(w io.Writer, o *options, env map[string]string, results []result) {
	fmt.Fprintf(w, "machine: %s CPUs (%s), %s, %s; nats-server %s, nats.go %s\n",
		env["nproc"], env["cpu"], env["go"], env["os/arch"], env["github.com/nats-io/nats-server/v2"], env["github.com/nats-io/nats.go"])
	for _, mode := range o.modes {
		n := o.n
		if mode.Always {
			n = o.nAlways
		}
		fmt.Fprintf(w, "\n### Sync %s (%d events, batches of %d, %d rounds, medians)\n\n", mode.Name, n, o.batch, o.rounds)
		fmt.Fprintln(w, "| scenario | Ferry msgs/s | raw msgs/s | ratio ferry/raw | per-round ratios | Ferry µs CPU/msg | raw µs CPU/msg | CPU ratio raw/ferry |")
		fmt.Fprintln(w, "|---|--:|--:|--:|---|--:|--:|--:|")
		for _, sc := range o.scenarios {
			rates := map[string][]float64{}
			cpus := map[string][]float64{}
			byRound := map[string]map[int]float64{}
			for _, r := range results {
				if r.Mode != mode.Name || r.Scenario != sc {
					continue
				}
				rates[r.Contender] = append(rates[r.Contender], r.Rate())
				cpus[r.Contender] = append(cpus[r.Contender], r.CPUPerMsg()*1e6)
				if byRound[r.Contender] == nil {
					byRound[r.Contender] = map[int]float64{}
				}
				byRound[r.Contender][r.Round] = r.Rate()
			}
			fr, rr := median(rates["ferry"]), median(rates["raw"])
			fc, rc := median(cpus["ferry"]), median(cpus["raw"])
			var rounds []string
			for round := 1; round <= o.rounds; round++ {
				f, okf := byRound["ferry"][round]
				r, okr := byRound["raw"][round]
				if okf && okr {
					rounds = append(rounds, fmt.Sprintf("%.2f", f/r))
				}
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", scenarioLabel(sc), num(fr), num(rr), ratio(fr, rr),
				strings.Join(rounds, ", "), dec(fc), dec(rc), ratio(rc, fc))
		}
		tries, stalled, foreign := map[string]int{}, map[string]int{}, map[string][]float64{}
		for _, r := range results {
			if r.Mode == mode.Name {
				tries[r.Contender] += r.Tries
				stalled[r.Contender] += r.StalledTries
				foreign[r.Contender] = append(foreign[r.Contender], r.Foreign/r.Wall)
			}
		}
		fmt.Fprintf(w, "\nMeasurements kept: foreign CPU median ferry %.2f, raw %.2f CPUs; tries ferry %d, raw %d; of which stalled (>1s without a handled event) ferry %d, raw %d.\n",
			median(foreign["ferry"]), median(foreign["raw"]), tries["ferry"], tries["raw"], stalled["ferry"], stalled["raw"])
	}
}

// printContenders prints, per sync mode and scenario, every contender's
// median rate and CPU per event: for runs with diagnostic replicas.
func printContenders(w io.Writer, o *options, results []result) {
	fmt.Fprintln(w, "\n### Every contender (medians)")
	fmt.Fprintln(w, "\n| sync | scenario | contender | msgs/s | µs CPU/msg | vs raw msgs/s | vs raw CPU |")
	fmt.Fprintln(w, "|---|---|---|--:|--:|--:|--:|")
	for _, mode := range o.modes {
		for _, sc := range o.scenarios {
			rate := func(c string) (float64, float64) {
				var rates, cpus []float64
				for _, r := range results {
					if r.Mode == mode.Name && r.Scenario == sc && r.Contender == c {
						rates = append(rates, r.Rate())
						cpus = append(cpus, r.CPUPerMsg()*1e6)
					}
				}
				return median(rates), median(cpus)
			}
			rawRate, rawCPU := rate("raw")
			for _, c := range o.contenders {
				cr, cc := rate(c)
				fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", mode.Name, sc, c, num(cr), dec(cc), ratio(cr, rawRate), ratio(rawCPU, cc))
			}
		}
	}
}

func scenarioLabel(sc string) string {
	switch sc {
	case "e2e":
		return "end to end (publish ∥ consume)"
	case "publish":
		return "publish only"
	case "consume":
		return "consume only (pre-filled)"
	}
	return sc
}

func num(v float64) string {
	if v == 0 {
		return "—"
	}
	s := strconv.FormatFloat(v, 'f', 0, 64)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func dec(v float64) string {
	if v == 0 {
		return "—"
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "—"
	}
	return fmt.Sprintf("**%.2f**", a/b)
}
