package faults_test

import (
	"fmt"
	"net/http"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/ferrygo/ferry/internal/natscluster"
)

// TestBrokerGone: services on an external nats-server keep answering
// while the server is gone — SIGKILLed (connections refused), or
// SIGSTOPped (a hung server: connections open, nothing answered) — and
// resume by themselves when it is back: /readyz answers 503 during the
// outage, the gateway's orders fail with 503 problem details instead of
// hanging, and every order acknowledged before, during or after is
// reserved, shipped and invoiced.
func TestBrokerGone(t *testing.T) {
	optIn(t)
	tests := []struct {
		scenario string
		fault    string
		down     time.Duration
		hang     bool
	}{
		{"broker-gone-kill", "external nats-server SIGKILLed under HTTP load (call + publish + enqueue per order), restarted on its store after 4 s", 4 * time.Second, false},
		{"broker-gone-stop", "external nats-server SIGSTOPped (hung, connections open) under HTTP load, SIGCONT after 8 s", 8 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			brokerGone(t, tt.scenario, tt.fault, tt.down, tt.hang)
		})
	}
}

func brokerGone(t *testing.T, scenario, fault string, down time.Duration, hang bool) {
	bin, err := natscluster.Binary(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := natscluster.Start(t.Context(), natscluster.Options{Nodes: 1, Dir: t.TempDir(), Bin: bin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Close() })

	sys := &system{}
	base, _ := sys.start(t, cluster.URL(), 1)
	ready := watchReadiness(base)
	d := startDriver(base, 3)
	time.Sleep(2 * time.Second)

	faultAt := time.Now()
	if hang {
		if err := cluster.Nodes()[0].Process().Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	} else {
		cluster.Kill(0)
	}
	time.Sleep(down)
	backAt := time.Now()
	if hang {
		if err := cluster.Nodes()[0].Process().Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	} else if err := cluster.Restart(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	// Run on until orders have been acknowledged for 3 s after the return.
	var resumed time.Time
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		d.mu.Lock()
		for _, o := range d.out {
			if o.status == http.StatusOK && o.sent.After(backAt) && (resumed.IsZero() || o.sent.Add(o.took).Before(resumed)) {
				resumed = o.sent.Add(o.took)
			}
		}
		d.mu.Unlock()
		if !resumed.IsZero() && time.Since(resumed) > 3*time.Second {
			break
		}
	}
	outs := d.finish()
	changes := ready.finish()
	if resumed.IsZero() {
		t.Fatalf("no order was acknowledged within 60 s of the broker's return")
	}

	ids, at := acked(outs)
	found, lost, dups := sys.verify(ids, 30*time.Second)
	if lost > 0 {
		t.Errorf("%d of %d acknowledged orders lost", lost, len(ids))
	}

	// The answers to orders sent while the broker was gone.
	var failed []time.Duration
	statuses := map[int]int{}
	notProblem := 0
	var inFlight time.Duration // the longest answer to an order sent just before the fault
	for _, o := range outs {
		if o.sent.Before(faultAt) && o.sent.Add(o.took).After(faultAt) {
			inFlight = max(inFlight, o.took)
		}
		if o.sent.Before(faultAt) || !o.sent.Before(backAt) || o.status == http.StatusOK {
			continue
		}
		failed = append(failed, o.took)
		statuses[o.status]++
		if o.status != 0 && !o.problemJ {
			notProblem++
		}
	}
	slices.Sort(failed)
	if notProblem > 0 {
		t.Errorf("%d answers during the outage were not problem details", notProblem)
	}
	notReady := firstAfter(changes, faultAt, http.StatusServiceUnavailable)
	readyAgain := firstAfter(changes, backAt, http.StatusOK)
	if !hang && notReady < 0 {
		t.Errorf("/readyz never answered 503 while the broker was down")
	}
	if readyAgain < 0 && !slices.ContainsFunc(changes, func(c change) bool { return c.status == http.StatusOK && c.at.After(faultAt) }) {
		t.Errorf("/readyz did not answer 200 again after the broker's return: %v", changes)
	}
	before := rate(at, faultAt.Add(-2*time.Second), faultAt)
	figures := map[string]string{
		"down":                  round(down),
		"not_ready_after":       round(notReady),
		"ready_again_after":     round(readyAgain),
		"resumed_after":         round(resumed.Sub(backAt)),
		"failed_during_outage":  fmt.Sprint(len(failed)),
		"failed_statuses":       countsText(statuses),
		"failed_answer_p50":     quantile(failed, 0.5),
		"failed_answer_max":     quantile(failed, 1),
		"endpoint_timeout":      round(placeTimeout),
		"in_flight_answer_max":  round(inFlight),
		"orders_per_s_before":   fmt.Sprintf("%.0f", before),
		"orders_per_s_after":    fmt.Sprintf("%.0f", rate(at, resumed, resumed.Add(3*time.Second))),
		"orders_sent":           fmt.Sprint(len(outs)),
		"acknowledged_in_fault": fmt.Sprint(countBetween(at, faultAt, backAt)),
	}
	t.Logf("%s: acknowledged %d, found %d, lost %d, duplicates %d; %v", scenario, len(ids), found, lost, dups, figures)
	writeRecord(t, Record{
		Scenario: scenario, Fault: fault, Runs: 1,
		Acknowledged: len(ids), Found: found, Lost: lost, Duplicates: dups,
		Command: "FERRY_CLUSTER_TESTS=1 go test ./internal/faults -run 'TestBrokerGone/" + scenario + "$' -v",
		Figures: figures,
		Notes:   "an order is acknowledged when the gateway answered 200 (stock called over NATS, event published, job enqueued); found when its reservation, delivery to the subscriber and job run were all seen",
	})
}

// quantile returns the q-quantile of sorted durations, or "-".
func quantile(sorted []time.Duration, q float64) string {
	if len(sorted) == 0 {
		return "-"
	}
	return round(sorted[int(q*float64(len(sorted)-1))])
}

// countBetween counts the times in [from, to).
func countBetween(at []time.Time, from, to time.Time) int {
	n := 0
	for _, t := range at {
		if !t.Before(from) && t.Before(to) {
			n++
		}
	}
	return n
}
