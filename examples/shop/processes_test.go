package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/shop/load"
	"github.com/ferrygo/ferry/ferrytest"
)

// TestServicesAsProcesses runs each service as its own process on one
// broker, orders and worker with two replicas each, and SIGKILLs one
// replica of each while orders are placed: every accepted order ends,
// and the stores keep the invariants.
func TestServicesAsProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the shop as six processes")
	}
	bin := ferrytest.Build(t, ".")
	args := []string{"-api-key", testKey, "-invoice-delay", "20ms"}
	procs := ferrytest.StartSystem(t, bin, []string{"gateway", "catalog", "orders", "worker"}, args...)
	gw := procs[0]
	orders2 := ferrytest.JoinSystem(t, bin, gw, "orders", args...)
	worker2 := ferrytest.JoinSystem(t, bin, gw, "worker", args...)

	raw, err := os.ReadFile(filepath.Join(gw.DataDir, "broker.url"))
	if err != nil {
		t.Fatal(err)
	}
	var broker struct{ URL string }
	if err := json.Unmarshal(raw, &broker); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(broker.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	client := ferry.NewClient(nc)

	ctx := context.Background()
	done := make(chan *load.Report, 1)
	go func() {
		r, err := load.Run(ctx, load.Options{URLs: []string{"http://" + gw.Addr}, APIKey: testKey, Orders: 400, Concurrency: 8, Client: client, Seed: 2})
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	time.Sleep(time.Second)
	for _, p := range []*ferrytest.SystemProcess{orders2, worker2} {
		if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = p.Cmd.Wait()
	}
	report := <-done
	if report == nil {
		return
	}
	t.Log(report)
	if report.Errors != 0 || report.Unfinished != 0 || report.Accepted == 0 {
		t.Errorf("report %+v", report)
	}
	bad, err := load.Check(ctx, client, report.Orders)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		t.Error(b)
	}
	ferrytest.StopSystem(t, procs...)
}
