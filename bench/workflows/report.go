package main

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
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

// quantile is the q-quantile of xs (nearest rank); it sorts xs.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	i := int(q*float64(len(xs))+0.5) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}

// natsVersion is the version of the nats-server module built in.
func natsVersion() string { return depVersion("github.com/nats-io/nats-server/v2") }

func depVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == path {
				return d.Version
			}
		}
	}
	return "?"
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
	for _, p := range []string{"github.com/nats-io/nats-server/v2", "github.com/nats-io/nats.go",
		"github.com/dbos-inc/dbos-transact-golang", "github.com/jackc/pgx/v5"} {
		env[p] = depVersion(p)
	}
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		env["commit"] = strings.TrimSpace(string(out))
	}
	return env
}

// printReport prints the table of rates and latencies, the table of
// writes per run, and the durability settings.
func printReport(w io.Writer, o *options, names []string, durability, env map[string]string, results []result) {
	fmt.Fprintf(w, "machine: %s CPUs (%s), %s, %s; commit %s\n", env["nproc"], env["cpu"], env["go"], env["os/arch"], env["commit"])
	fmt.Fprintf(w, "nats-server %s, nats.go %s; dbos-transact-golang %s, pgx %s\n",
		env["github.com/nats-io/nats-server/v2"], env["github.com/nats-io/nats.go"],
		env["github.com/dbos-inc/dbos-transact-golang"], env["github.com/jackc/pgx/v5"])
	byName := map[string][]result{}
	for _, r := range results {
		byName[r.Contender] = append(byName[r.Contender], r)
	}
	med := func(name string, f func(result) float64) float64 {
		var xs []float64
		for _, r := range byName[name] {
			xs = append(xs, f(r))
		}
		return median(xs)
	}
	ref := o.ref
	if _, ok := byName[ref]; !ok {
		ref = names[0]
	}
	refRate := med(ref, result.Rate)

	fmt.Fprintf(w, "\n### Three-step workflows end to end (up to %d runs or %v of starting; %d producers, each waiting for its run's result; %d rounds, medians)\n\n",
		o.n, o.d, producers, o.rounds)
	fmt.Fprintf(w, "| contender | runs | runs/s | vs %s | per-round vs %s | start p50 | start p99 | run p50 | run p99 | CPU µs/run (bench + server) | extra steps |\n", ref, ref)
	fmt.Fprintln(w, "|---|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|")
	for _, name := range names {
		rate := med(name, result.Rate)
		var rounds []string
		for _, r := range byName[name] {
			for _, q := range byName[ref] {
				if q.Round == r.Round {
					rounds = append(rounds, fmt.Sprintf("%.2f", r.Rate()/q.Rate()))
				}
			}
		}
		extra := 0
		for _, r := range byName[name] {
			extra += r.ExtraSteps
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s (%s + %s) | %d |\n", name,
			num(med(name, func(r result) float64 { return float64(r.N) })), num(rate), ratio(rate, refRate), strings.Join(rounds, ", "),
			ms(med(name, func(r result) float64 { return r.StartP50 })), ms(med(name, func(r result) float64 { return r.StartP99 })),
			ms(med(name, func(r result) float64 { return r.RunP50 })), ms(med(name, func(r result) float64 { return r.RunP99 })),
			dec(med(name, func(r result) float64 { return r.CPUPerRun() * 1e6 })),
			dec(med(name, func(r result) float64 { return r.Self / float64(r.N) * 1e6 })),
			dec(med(name, func(r result) float64 { return r.Server / float64(r.N) * 1e6 })), extra)
	}
	var foreign []string
	for _, name := range names {
		foreign = append(foreign, fmt.Sprintf("%s %.2f", name, med(name, func(r result) float64 { return r.Foreign / r.Wall })))
	}
	fmt.Fprintf(w, "\nOther processes' CPU during the measurements (median, CPUs): %s.\n", strings.Join(foreign, ", "))

	fmt.Fprintf(w, "\n### Writes per run (medians)\n\n| contender | counter | per run |\n|---|---|--:|\n")
	for _, name := range names {
		keys := map[string]bool{}
		for _, r := range byName[name] {
			for k := range r.Writes {
				keys[k] = true
			}
		}
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			v := med(name, func(r result) float64 { return r.Writes[k] })
			s := strconv.FormatFloat(v, 'f', 2, 64)
			if strings.Contains(k, "bytes") {
				s = num(v)
			}
			fmt.Fprintf(w, "| %s | %s | %s |\n", name, k, s)
		}
	}

	fmt.Fprintf(w, "\n### Durability settings\n\n")
	for _, name := range names {
		fmt.Fprintf(w, "- %s: %s\n", name, durability[name])
	}
}
func num(v float64) string {
	if v == 0 {
		return "0"
	}
	s := strconv.FormatFloat(v, 'f', 0, 64)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func dec(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

func ms(sec float64) string { return strconv.FormatFloat(sec*1e3, 'f', 2, 64) + " ms" }

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "—"
	}
	return fmt.Sprintf("**%.2f**", a/b)
}
