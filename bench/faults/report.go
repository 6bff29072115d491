package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/ferrygo/ferry/internal/reliability"
)

// faultText says what a scenario does, for the record.
var faultText = map[string]string{
	scenarioRandom: "SIGKILL of a service process (endpoint, subscription, jobs, workflows) or of the embedded broker's, " +
		"at seeded moments under load, restarted after 0.2–2 s",
	scenarioBrokerRestart: "SIGKILL of the embedded broker's process under load, restarted on the same data directory after 0.2–2 s",
}

// record is the run's reliability record. Duplicates counts both kinds of
// work done more than once and absorbed: handler runs beyond the first
// (at-least-once delivery) and publishes JetStream de-duplicated by
// message ID (a retry of an attempt that had been stored).
func (out *Outcome) record() reliability.Record {
	v := out.Verdict
	runs := func(kind string) int { return v.ByKind[kind].ExtraRuns }
	acked := func(kind string) int { return v.ByKind[kind].Acknowledged }
	figures := map[string]string{
		"wall":             out.Wall.Round(100 * time.Millisecond).String(),
		"kills":            out.killsByTarget(),
		"kills_under_load": fmt.Sprintf("%d/%d", out.underLoad(), len(out.Injected)),
		"acked_by_kind":    fmt.Sprintf("call %d, publish %d, enqueue %d, start %d", acked(opCall), acked(opPublish), acked(opEnqueue), acked(opStart)),
		"reruns":           fmt.Sprintf("call %d, event %d, job %d, step %d", runs(opCall), runs(opPublish), runs(opEnqueue), runs(opStart)),
		"jetstream_dedup":  fmt.Sprint(v.JetStreamDuplicates),
		"retried_attempts": fmt.Sprintf("call %d, publish %d, enqueue %d, start %d",
			out.RetriedByKind[0], out.RetriedByKind[1], out.RetriedByKind[2], out.RetriedByKind[3]),
		"unabsorbed":        fmt.Sprint(v.Unabsorbed),
		"ready_after_start": "≤ " + out.slowestReady().Round(100*time.Millisecond).String(),
		"settled_in":        out.Settled.Round(100 * time.Millisecond).String(),
		"events_stored":     fmt.Sprintf("%d for %d publishes", out.StoredEvents, acked(opPublish)),
	}
	if out.BeforeBrokerKill > 0 {
		figures["acked_before_last_broker_kill"] = fmt.Sprint(out.BeforeBrokerKill)
		figures["acks_resumed_after_broker_ready"] = "≤ " + out.Resumed.Round(10*time.Millisecond).String()
	}
	notes := ""
	if len(out.Stops) > 0 {
		notes = "not stopped cleanly: " + strings.Join(out.Stops, "; ")
	}
	return reliability.Record{
		Scenario:     out.Options.Name,
		Fault:        faultText[out.Options.Scenario],
		Runs:         len(out.Injected),
		Seed:         out.Options.Seed,
		Acknowledged: v.Acknowledged,
		Found:        v.Found,
		Lost:         v.Lost,
		Duplicates:   v.ExtraRuns + v.JetStreamDuplicates,
		Command:      out.Options.Command,
		Figures:      figures,
		Notes:        notes,
		When:         time.Now().UTC().Truncate(time.Second),
	}
}

// summary is the run's outcome for a person.
func summary(out *Outcome) string {
	var b strings.Builder
	fmt.Fprintf(&b, "scenario %s, seed %d: %d operations, %d faults (%s), %v\n",
		out.Options.Name, out.Options.Seed, out.Options.Ops, len(out.Injected), out.killsByTarget(), out.Wall.Round(100*time.Millisecond))
	if v := out.Verdict; v != nil {
		fmt.Fprintf(&b, "acknowledged %d, found %d, lost %d, duplicates %d (extra runs %d, JetStream-de-duplicated publishes %d), unabsorbed %d\n",
			v.Acknowledged, v.Found, v.Lost, v.ExtraRuns+v.JetStreamDuplicates, v.ExtraRuns, v.JetStreamDuplicates, v.Unabsorbed)
		for _, k := range kindsInOrder(v) {
			t := v.ByKind[k]
			fmt.Fprintf(&b, "  %-8s acknowledged %5d  found %5d  lost %d  extra runs %d  unabsorbed %d\n", k, t.Acknowledged, t.Found, t.Lost, t.ExtraRuns, t.Unabsorbed)
		}
	}
	fmt.Fprintf(&b, "the topic's stream holds %d events; %d operations were acknowledged before the broker's last kill\n", out.StoredEvents, out.BeforeBrokerKill)
	if len(out.Stops) > 0 {
		fmt.Fprintf(&b, "not stopped cleanly: %s\n", strings.Join(out.Stops, "; "))
	}
	fmt.Fprintf(&b, "reproduce: %s\n", out.Options.Command)
	return b.String()
}
