package ferry_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// The drain child: a two-service host in a process of its own. gateway
// (HTTP) answers POST /orders/{n} by calling backend over NATS and
// publishing an event, which backend consumes; backend has no HTTP.

// DrainWorkInput is the backend's call.
type DrainWorkInput struct {
	N int `path:"n"`
}

// DrainWorkOutput is the backend's answer.
type DrainWorkOutput struct {
	Body struct {
		Doubled int `json:"doubled"`
	}
}

// DrainOrderOutput is the gateway's answer.
type DrainOrderOutput struct {
	Body struct {
		N       int `json:"n"`
		Doubled int `json:"doubled"`
	}
}

// DrainAccepted is the event the gateway publishes for each order.
type DrainAccepted struct {
	N int `json:"n"`
}

var (
	drainWork     = ferry.Endpoint[DrainWorkInput, DrainWorkOutput]{Service: "backend", Name: "work", Method: http.MethodPost, Path: "/work/{n}"}
	drainAccepted = ferry.Topic[DrainAccepted]{Name: "drain-accepted", Subject: "test.drain.accepted"}
)

// drainEventID is the message ID of order n's event.
func drainEventID(n int) string { return fmt.Sprintf("o-%d", n) }

// runDrainChild runs the two-service host with the settings of the
// environment (FERRY_DATA_DIR, FERRY_DRAIN_DELAY, PORT), writes "addr
// <host:port>" on stdout once the gateway listens, and appends the message
// ID of each event backend handles to the file out before the event is
// acknowledged, with its Delivery. It exits 0 after a clean shutdown.
func runDrainChild(out string) int {
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer f.Close()
	cfg, err := ferry.LoadConfig(flag.NewFlagSet("drain", flag.ContinueOnError), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	backend := ferry.MustNew("backend", "1.0.0", ferry.WithNATS(), ferry.WithoutHTTP())
	ferry.Handle(backend, drainWork, func(_ context.Context, in *DrainWorkInput) (*DrainWorkOutput, error) {
		time.Sleep(2 * time.Millisecond) // some work, so calls are in flight when the signal lands
		out := &DrainWorkOutput{}
		out.Body.Doubled = 2 * in.N
		return out, nil
	})
	var mu sync.Mutex
	ferry.Subscribe(backend, drainAccepted, "count", func(ctx context.Context, _ *DrainAccepted) error {
		time.Sleep(time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		e := ferry.EventFromContext(ctx)
		_, err := fmt.Fprintf(f, "%s %d\n", e.ID, e.Delivery)
		return err
	}, ferry.SubscribeConcurrency(8),
		// An event handed back in the instant before the embedded broker
		// stops comes back after the ack wait once the broker restarts (the
		// server keeps no record of the nak; docs/events.md): keep it short.
		ferry.SubscribeAckWait(2*time.Second))

	gateway := ferry.MustNew("gateway", "1.0.0")
	pub := ferry.NewPublisher(gateway, drainAccepted)
	ferry.Post(gateway, "order", "/orders/{n}", func(ctx context.Context, in *DrainWorkInput) (*DrainOrderOutput, error) {
		work, err := drainWork.Call(ctx, gateway.Client(), in)
		if err != nil {
			return nil, err
		}
		if _, err := pub.Publish(ctx, &DrainAccepted{N: in.N}, ferry.PublishMessageID(drainEventID(in.N))); err != nil {
			return nil, err
		}
		out := &DrainOrderOutput{}
		out.Body.N, out.Body.Doubled = in.N, work.Body.Doubled
		return out, nil
	})

	h, err := ferry.NewHost(ferry.WithConfig(cfg))
	if err == nil {
		err = h.Add(gateway, backend)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	go func() {
		for gateway.Addr() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		fmt.Println("addr", gateway.Addr())
	}()
	if err := h.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "drain child:", err)
		return 1
	}
	return 0
}

// drainChild is a running drain child process.
type drainChild struct {
	cmd  *exec.Cmd
	addr string
	done chan error // the result of Wait
}

// startDrainChild starts the drain child on dir's store, its events
// recorded in out, its log in logf.
func startDrainChild(t *testing.T, dir, out, logf string) *drainChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	for _, kv := range os.Environ() { // the child's settings are the test's alone
		if !strings.HasPrefix(kv, "FERRY_") && !strings.HasPrefix(kv, "PORT=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "FERRY_TEST_DRAIN_OUT="+out, "FERRY_DATA_DIR="+dir, "PORT=127.0.0.1:0",
		"FERRY_DRAIN_DELAY=1s", "FERRY_SHUTDOWN_GRACE=10s")
	lf, err := os.OpenFile(logf, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lf.Close() })
	cmd.Stderr = lf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &drainChild{cmd: cmd, done: make(chan error, 1)}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-c.done
		}
	})
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	go func() { c.done <- cmd.Wait() }()
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "addr ")
	if !ok {
		t.Fatalf("the drain child did not start (%q); its log:\n%s", line, readFile(logf))
	}
	c.addr = addr
	ferrytest.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + ferry.ReadyzPath)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "the drain child is ready")
	return c
}

// stop sends SIGTERM and waits (bounded) for the process to end; it fails
// the test unless the process exits 0.
func (c *drainChild) stop(t *testing.T, logf string) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	c.wait(t, logf)
}

// wait waits (bounded) for the process to end and fails the test unless
// it exits 0.
func (c *drainChild) wait(t *testing.T, logf string) {
	t.Helper()
	select {
	case err := <-c.done:
		if err != nil {
			t.Fatalf("the drain child ended with %v, want exit status 0; its log:\n%s", err, readFile(logf))
		}
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
		t.Fatalf("the drain child did not exit after SIGTERM; its log:\n%s", readFile(logf))
	}
}

// drainHandled reads the runs the drain children recorded: for each event
// ID, the Delivery of each run, in order.
func drainHandled(t *testing.T, path string) map[string][]uint64 {
	t.Helper()
	runs := map[string][]uint64{}
	f, err := os.Open(path)
	if err != nil {
		return runs
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var id string
		var delivery uint64
		if _, err := fmt.Sscanf(sc.Text(), "%s %d", &id, &delivery); err == nil {
			runs[id] = append(runs[id], delivery)
		}
	}
	return runs
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// drainOutcome is one request of the load loop.
type drainOutcome struct {
	n           int
	afterSignal bool // started after SIGTERM was sent
	after503    bool // started after /readyz was seen answering 503
	status      int
	body        string
	err         error // no response
	bodyErr     error // a response cut short
}

// TestGracefulDrainUnderLoad sends SIGTERM to a real process — a gateway
// that calls a backend over NATS and publishes an event the backend
// consumes — in the middle of a bounded load of HTTP requests: every
// request sent before the signal gets its complete answer, no request gets
// a 5xx (no no_responders: the backend's NATS endpoints outlive the
// gateway's HTTP requests), /readyz answers 503 during the drain delay
// while requests still succeed, the process exits 0, and every event whose
// publish was acknowledged is handled, counting a restart on the same
// store.
func TestGracefulDrainUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the service as a child process")
	}
	const (
		workers     = 16
		maxRequests = 20000            // the load loop is bounded by count …
		maxLoad     = 15 * time.Second // … and by time
		beforeKill  = 300              // answers before the signal
	)
	dir, tmp := t.TempDir(), t.TempDir()
	out, logf := filepath.Join(tmp, "handled.txt"), filepath.Join(tmp, "child.log")
	child := startDrainChild(t, dir, out, logf)
	base := "http://" + child.addr

	var signaled, seen503 atomic.Bool
	var next, ok atomic.Int64
	results := make(chan drainOutcome, maxRequests)
	stop := make(chan struct{})
	transport := &http.Transport{MaxIdleConnsPerHost: workers}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: maxLoad}
	deadline := time.Now().Add(maxLoad)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := int(next.Add(1))
				if n > maxRequests || time.Now().After(deadline) {
					return
				}
				o := drainOutcome{n: n, afterSignal: signaled.Load(), after503: seen503.Load()}
				resp, err := client.Post(fmt.Sprintf("%s/orders/%d", base, n), "", nil)
				if err != nil {
					o.err = err
					results <- o
					if o.afterSignal {
						return // the listener closed: a load balancer stopped sending long ago
					}
					continue
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				o.status, o.body, o.bodyErr = resp.StatusCode, string(b), err
				if o.status == http.StatusOK && err == nil {
					ok.Add(1)
				}
				results <- o
			}
		})
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()
	ferrytest.Eventually(t, func() bool { return ok.Load() >= beforeKill }, "%d requests answered before the signal", beforeKill)
	signaled.Store(true) // before the signal: a request that saw false was sent before it
	if err := child.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// /readyz, on a connection of its own each time, until the listener closes.
	var readyAfter503 atomic.Int64
	var pollers sync.WaitGroup
	pollers.Go(func() {
		probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
		for time.Now().Before(deadline) {
			resp, err := probe.Get(base + ferry.ReadyzPath)
			if err != nil {
				return
			}
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusServiceUnavailable:
				seen503.Store(true)
			case http.StatusOK:
				if seen503.Load() {
					readyAfter503.Add(1)
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	child.wait(t, logf)
	stopLoad()
	pollers.Wait()
	close(results)

	acked := map[int]bool{}
	var before, after, afterReady, failedAfter int
	for o := range results {
		want := fmt.Sprintf(`{"n":%d,"doubled":%d}`, o.n, 2*o.n)
		switch {
		case o.err != nil && !o.afterSignal:
			t.Errorf("request %d, sent before the signal, got no response: %v", o.n, o.err)
		case o.err != nil:
			failedAfter++ // the listener had closed: never accepted
		case o.bodyErr != nil:
			t.Errorf("request %d (after the signal: %v): response cut short: %v", o.n, o.afterSignal, o.bodyErr)
		case o.status != http.StatusOK || o.body != want:
			t.Errorf("request %d (after the signal: %v): %d %s, want 200 %s", o.n, o.afterSignal, o.status, o.body, want)
		default:
			acked[o.n] = true
			if o.afterSignal {
				after++
			} else {
				before++
			}
			if o.after503 {
				afterReady++
			}
		}
	}
	t.Logf("answered %d requests sent before the signal, %d after it (%d after /readyz answered 503); %d found the listener closed",
		before, after, afterReady, failedAfter)
	if !seen503.Load() {
		t.Error("/readyz never answered 503 during the drain delay")
	} else if afterReady == 0 {
		t.Error("no request sent after /readyz answered 503 was answered: the drain delay did not keep serving")
	}
	if n := readyAfter503.Load(); n > 0 {
		t.Errorf("/readyz answered 200 again %d times after answering 503", n)
	}
	if t.Failed() {
		t.Logf("the child's log:\n%s", readFile(logf))
	}

	// Every event whose publish was acknowledged is handled, if need be by
	// the next process on the same store, and no event's first run counts
	// as a second attempt (a drain hands back without spending one).
	handledBefore := drainHandled(t, out)
	child = startDrainChild(t, dir, out, logf)
	missing := func() []string {
		runs := drainHandled(t, out)
		var m []string
		for n := range acked {
			if len(runs[drainEventID(n)]) == 0 {
				m = append(m, drainEventID(n))
			}
		}
		return m
	}
	deadline = time.Now().Add(ferrytest.DefaultWait)
	for len(missing()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if m := missing(); len(m) > 0 {
		t.Fatalf("%d of %d acknowledged events were never handled (%d handled before the restart), such as %v; the children's log:\n%s",
			len(m), len(acked), len(handledBefore), m[:min(len(m), 10)], readFile(logf))
	}
	child.stop(t, logf)
	runs, total := drainHandled(t, out), 0
	for id, deliveries := range runs {
		total += len(deliveries)
		if deliveries[0] != 1 {
			t.Errorf("event %s first ran as delivery %d: a hand-back was counted as an attempt", id, deliveries[0])
		}
	}
	t.Logf("%d events acknowledged to the load; %d handled before the restart, %d in all, %d handler runs",
		len(acked), len(handledBefore), len(runs), total)
}
