package main

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ferrygo/ferry/ferrytest"
	"github.com/ferrygo/ferry/internal/reliability"
)

// faultRun runs a short fault run of o's scenario as a test: only with
// FERRY_FAULT_TESTS=1 (CI sets it), on the seed FERRY_FAULT_SEED names or a
// time-based one (logged, and in the record), writing its record to the
// directory FERRY_RELIABILITY_RECORDS names, if any.
func faultRun(t *testing.T, o Options, test string) {
	if os.Getenv("FERRY_FAULT_TESTS") != "1" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but FERRY_FAULT_TESTS is not 1: the fault runs must run in CI (.ci/run exports it)")
		}
		t.Skip("a fault run with real processes and SIGKILLs (~15 s): set FERRY_FAULT_TESTS=1 to run it")
	}
	o.Seed = time.Now().UnixNano()
	if s := os.Getenv("FERRY_FAULT_SEED"); s != "" {
		seed, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("FERRY_FAULT_SEED=%q: %v", s, err)
		}
		o.Seed = seed
	}
	o.Bin = ferrytest.Build(t, ".")
	o.Records = os.Getenv(reliability.RecordsEnv)
	o.Command = "FERRY_FAULT_TESTS=1 FERRY_FAULT_SEED=" + strconv.FormatInt(o.Seed, 10) + " go test ./bench/faults -run " + test
	o.Logf = t.Logf
	out, err := Run(context.Background(), o)
	if out != nil {
		t.Log("\n" + summary(out))
	}
	if err != nil {
		t.Fatalf("seed %d: %v", o.Seed, err)
	}
}

// TestRandomFaults: 300 operations while three service or broker processes
// are SIGKILLed and restarted; nothing acknowledged is lost, every retry
// is absorbed.
func TestRandomFaults(t *testing.T) {
	o := defaultOptions()
	o.Name, o.Ops, o.Kills, o.Duration = "random-faults-short", 300, 3, 5*time.Minute
	faultRun(t, o, "TestRandomFaults")
}

// TestBrokerRestart: 300 operations while the embedded broker's process is
// SIGKILLed and restarted on its data directory three times; every
// event, job and workflow step acknowledged is still handled, and
// publishes retried after an error are de-duplicated by message ID.
func TestBrokerRestart(t *testing.T) {
	o := defaultOptions()
	o.Scenario, o.Ops, o.Kills, o.Duration = scenarioBrokerRestart, 300, 3, 5*time.Minute
	faultRun(t, o, "TestBrokerRestart")
}
