package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestScaleOutSurvivesKills is the command at a smaller scale: a 3-node
// cluster, two replicas of each service, a NATS node and a replica of
// orders and of worker SIGKILLed mid-run and restarted; every accepted
// order ends, the stores keep the invariants. A few minutes of child
// processes: run when FERRY_CLUSTER_TESTS=1 (CI sets it).
func TestScaleOutSurvivesKills(t *testing.T) {
	if os.Getenv("FERRY_CLUSTER_TESTS") != "1" {
		t.Skip("a 3-node cluster and eight service processes for a minute or two: set FERRY_CLUSTER_TESTS=1 to run it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, []string{"-orders", "800", "-concurrency", "8", "-kill-after", "3s", "-down", "4s"}, &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"SIGKILL: NATS node", "restarted them", "invariants: hold", "orders/s invoiced:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the output says nothing of %q", want)
		}
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		args []string
		err  string
	}{
		{[]string{"-nodes", "1"}, "-kill needs at least 3 nodes"},
		{[]string{"-replicas", "1"}, "-kill needs at least 3 nodes and 2 replicas"},
		{[]string{"-orders", "0"}, "at least 1"},
		{[]string{"-bogus"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		err := run(context.Background(), tt.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("run(%v) = %v, want an error saying %q", tt.args, err, tt.err)
		}
	}
}
