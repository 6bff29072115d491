package ferry_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// handledIDs reads the distinct IDs a subscriber child wrote, and the
// number of lines (handler runs).
func handledIDs(t *testing.T, path string) (map[string]bool, int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return map[string]bool{}, 0
	}
	defer f.Close()
	ids, lines := map[string]bool{}, 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); line != "" {
			ids[line] = true
			lines++
		}
	}
	return ids, lines
}

func startSubscriberChild(t *testing.T, url, out string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FERRY_TEST_SUBSCRIBER_OUT="+out, "FERRY_NATS_URL="+url)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

// TestSubscriberKilledMidStream: a subscriber process is killed with
// SIGKILL while handling a stream of events; a new one takes over, and in
// the end every published event has been handled (by ID), none lost.
func TestSubscriberKilledMidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("runs subscriber child processes")
	}
	const n = 2000
	cfg := ferrytest.Config(t)
	cfg.NATSListen = "127.0.0.1:0"
	producer := ferry.MustNew("orders", "1.0.0", ferry.WithoutHTTP(), quiet)
	pub := ferry.NewPublisher(producer, placed)
	h := ferrytest.StartWith(t, cfg, producer)
	out := filepath.Join(t.TempDir(), "handled.txt")

	events := make([]*OrderPlaced, n)
	for i := range events {
		events[i] = &OrderPlaced{OrderID: fmt.Sprintf("o-%05d", i), Quantity: 1}
	}
	// Publish while the first child consumes.
	first := startSubscriberChild(t, h.BrokerURL(), out)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; i < n; i += 100 {
			for _, e := range events[i : i+100] {
				if _, err := pub.Publish(context.Background(), e); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	ferrytest.Eventually(t, func() bool { ids, _ := handledIDs(t, out); return len(ids) >= n/5 }, "the first subscriber handles a fifth")
	_ = first.Process.Kill() // SIGKILL: no drain, no acks for what it held
	_ = first.Wait()
	before, _ := handledIDs(t, out)
	if len(before) == n {
		t.Fatal("the kill came after the end of the stream; nothing was tested")
	}
	startSubscriberChild(t, h.BrokerURL(), out)
	wg.Wait()
	ferrytest.Eventually(t, func() bool { ids, _ := handledIDs(t, out); return len(ids) == n }, "all %d events are handled", n)
	ids, lines := handledIDs(t, out)
	for _, e := range events {
		if !ids[e.OrderID] {
			t.Errorf("event %s was lost", e.OrderID)
		}
	}
	t.Logf("killed after %d of %d events; %d handler runs in all (%d redelivered after the kill)", len(before), n, lines, lines-n)
}
