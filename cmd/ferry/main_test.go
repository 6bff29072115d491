package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

type item struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

type getItemIn struct {
	ID int `path:"id"`
}

type getItemOut struct{ Body item }

type restocked struct {
	SKU      string `json:"sku" minLength:"1"`
	Quantity int    `json:"quantity"`
}

type countIn struct {
	To int `json:"to" minimum:"1"`
}

type countOut struct {
	Counted int `json:"counted"`
}

var (
	getItem   = ferry.Endpoint[getItemIn, getItemOut]{Service: "store", Name: "get-item", Method: http.MethodGet, Path: "/items/{id}"}
	restock   = ferry.Topic[restocked]{Name: "restocked", Subject: "store.restocked"}
	countJob  = ferry.Job[countIn, countOut]{Name: "count"}
	countFlow = ferry.Workflow[countIn, countOut]{Name: "count-flow"}
)

// gated makes a count job wait at the gate before it counts.
const gated = 3

var gate = make(chan struct{})

// system starts a store service on an embedded broker that listens on
// loopback, and returns the broker's URL and a client.
func system(t *testing.T) (string, *ferrytest.Host) {
	t.Helper()
	svc := ferry.MustNew("store", "1.2.3", ferry.WithNATS())
	ferry.Handle(svc, getItem, func(ctx context.Context, in *getItemIn) (*getItemOut, error) {
		if in.ID != 7 {
			return nil, &ferry.Error{Status: http.StatusNotFound, Code: "item_not_found", Detail: "no such item"}
		}
		return &getItemOut{Body: item{ID: 7, Name: "mug"}}, nil
	})
	ferry.Subscribe(svc, restock, "ledger", func(ctx context.Context, ev *restocked) error {
		if ev.Quantity < 0 {
			return ferry.Permanent(errors.New("negative quantity"))
		}
		return nil
	})
	ferry.HandleJob(svc, countJob, func(ctx context.Context, in *countIn, p *ferry.Progress) (*countOut, error) {
		if in.To == gated {
			p.Set(50, "waiting at the gate")
			select {
			case <-gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		for i := 1; i <= in.To; i++ {
			p.Set(float64(100*i/in.To), "counting")
			time.Sleep(20 * time.Millisecond)
		}
		return &countOut{Counted: in.To}, nil
	})
	ferry.HandleWorkflow(svc, countFlow, func(ctx ferry.WorkflowContext, in *countIn) (*countOut, error) {
		n, err := ferry.Step(ctx, "first", func(context.Context) (int, error) { return in.To, nil })
		if err != nil {
			return nil, err
		}
		m, err := ferry.Step(ctx, "second", func(context.Context) (int, error) { return n * 2, nil })
		if err != nil {
			return nil, err
		}
		return &countOut{Counted: m}, nil
	})
	cfg := ferrytest.Config(t)
	cfg.NATSListen = "127.0.0.1:0"
	h := ferrytest.StartWith(t, cfg, svc)
	url := h.BrokerURL()
	if url == "" {
		t.Fatal("the broker does not listen")
	}
	return url, h
}

// ferryCmd runs the command with args against server and returns its
// exit code, standard output and standard error.
func ferryCmd(t *testing.T, server string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	if server != "" {
		args = append([]string{"--server", server}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCommands(t *testing.T) {
	url, h := system(t)
	ctx := context.Background()
	if _, err := restock.Publish(ctx, h.Client, &restocked{SKU: "mug", Quantity: -1}); err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, func() bool {
		dls, _ := ferry.ListDeadLetters(ctx, h.Client, ferry.DeadLetterFilter{}, 10)
		return len(dls) == 1
	}, "one dead letter")
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string // a regular expression stdout matches
		err  string // and stderr
	}{
		{"services", []string{"services"}, 0, `(?s)store\s+1\s+1\.2\.3.*store\s+get-item\s+GET /items/\{id\}`, ``},
		{"services json", []string{"services", "--json"}, 0, `"name": "store"`, ``},
		{"call", []string{"call", "store.get-item", "-p", "id=7"}, 0, `"name": "mug"`, ``},
		{"call problem", []string{"call", "store.get-item", "-p", "id=8"}, 1, `^$`, `404 item_not_found: no such item`},
		{"call problem json", []string{"call", "store.get-item", "-p", "id=8", "--json"}, 1, `"code": "item_not_found"`, `^$`},
		{"call nobody", []string{"call", "nobody.x"}, 1, ``, `503 no_responders`},
		{"call without a dot", []string{"call", "store"}, 2, ``, `SERVICE\.ENDPOINT`},
		{"call bad body", []string{"call", "store.get-item", "{"}, 2, ``, `not JSON`},
		{"publish", []string{"publish", "restocked", `{"sku":"mug","quantity":5}`, "--id", "r-1"}, 0, `published on restocked: sequence 2, id r-1`, ``},
		{"publish again", []string{"publish", "restocked", `{"sku":"mug","quantity":5}`, "--id", "r-1"}, 0, `not stored again`, ``},
		{"publish invalid", []string{"publish", "nothing", `{}`}, 1, ``, `404 topic_not_found`},
		{"tail", []string{"tail", "restocked", "--all", "-n", "2", "--json"}, 0, `(?s)"sequence":1.*"quantity":-1.*"sequence":2.*"id":"r-1"`, ``},
		{"dlq list", []string{"dlq", "list"}, 0, `(?s)SEQ.*restocked\s+store\s+ledger\s+1\s+.*negative quantity`, ``},
		{"dlq list json", []string{"dlq", "list", "--json", "--topic", "restocked"}, 0, `"data": \{`, ``},
		{"dlq show", []string{"dlq", "show", "1"}, 0, `(?s)topic restocked, service store, consumer ledger.*"quantity": -1`, ``},
		{"dlq show none", []string{"dlq", "show", "99"}, 1, ``, `404`},
		{"dlq replay nothing named", []string{"dlq", "replay"}, 2, ``, `--all`},
		{"spec openapi", []string{"spec", "openapi", "store"}, 0, `"openapi": "3\.1`, ``},
		{"spec asyncapi", []string{"spec", "asyncapi", "store"}, 0, `"asyncapi": "3\.0\.0"`, ``},
		{"spec of nobody", []string{"spec", "openapi", "nobody"}, 1, ``, `404`},
		{"spec unknown", []string{"spec", "swagger", "store"}, 2, ``, `openapi or asyncapi`},
		{"jobs of none", []string{"jobs", "show", "NOPE"}, 1, ``, `404 job_not_found`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := ferryCmd(t, url, tc.args...)
			if code != tc.code || !regexp.MustCompile(tc.out).MatchString(out) || !regexp.MustCompile(tc.err).MatchString(errOut) {
				t.Errorf("ferry %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(tc.args, " "), code, tc.code, out, errOut)
			}
		})
	}

	// A replayed dead letter leaves the list and is handled again (and,
	// failing again, dead-lettered again under a new sequence).
	if code, out, errOut := ferryCmd(t, url, "dlq", "replay", "--topic", "restocked"); code != 0 || !strings.Contains(out, "replayed 1 dead letter") {
		t.Fatalf("dlq replay: %d %s %s", code, out, errOut)
	}
	ferrytest.Eventually(t, func() bool {
		dls, _ := ferry.ListDeadLetters(ctx, h.Client, ferry.DeadLetterFilter{}, 10)
		return len(dls) == 1 && dls[0].Sequence > 1
	}, "the replay dead-lettered again")
	if code, out, _ := ferryCmd(t, url, "dlq", "purge", "--all"); code != 0 || !strings.Contains(out, "deleted 1 dead letter") {
		t.Fatalf("dlq purge: %d %s", code, out)
	}
}

func TestJobsAndRuns(t *testing.T) {
	url, h := system(t)
	ctx := context.Background()
	id, err := countJob.Enqueue(ctx, h.Client, &countIn{To: gated})
	if err != nil {
		t.Fatal(err)
	}
	// watch follows the job while it runs, then prints its end and result.
	var out syncBuffer
	watched := make(chan int, 1)
	go func() {
		var errOut bytes.Buffer
		watched <- run(ctx, []string{"--server", url, "jobs", "watch", id, "--interval", "20ms"}, &out, &errOut)
	}()
	ferrytest.Eventually(t, func() bool { return strings.Contains(out.String(), "running   attempt 1  50% waiting at the gate") }, "watch shows the job running")
	close(gate)
	if code := <-watched; code != 0 || !strings.Contains(out.String(), "succeeded attempt 1") || !strings.Contains(out.String(), `"counted": 3`) {
		t.Fatalf("jobs watch: %d\n%s", code, out.String())
	}
	if code, out, _ := ferryCmd(t, url, "jobs", "list", "--job", "count"); code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "succeeded") {
		t.Errorf("jobs list: %d\n%s", code, out)
	}
	if code, out, _ := ferryCmd(t, url, "jobs", "show", id, "--json"); code != 0 || !strings.Contains(out, `"state": "succeeded"`) {
		t.Errorf("jobs show: %d\n%s", code, out)
	}
	if code, _, errOut := ferryCmd(t, url, "jobs", "retry", id); code != 1 || !strings.Contains(errOut, "409 not_retryable") {
		t.Errorf("jobs retry of a succeeded job: %d %s", code, errOut)
	}

	runID, err := countFlow.Start(ctx, h.Client, &countIn{To: 4})
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, errOut := ferryCmd(t, url, "runs", "watch", runID, "--interval", "50ms")
	if code != 0 || !strings.Contains(stdout, `"counted": 8`) {
		t.Fatalf("runs watch: %d\n%s\n%s", code, stdout, errOut)
	}
	if code, out, _ := ferryCmd(t, url, "runs", "list"); code != 0 || !strings.Contains(out, runID) || strings.Contains(out, id) {
		t.Errorf("runs list (the run, not the job): %d\n%s", code, out)
	}
	if code, out, _ := ferryCmd(t, url, "jobs", "list"); code != 0 || strings.Contains(out, runID) {
		t.Errorf("jobs list (not the run): %d\n%s", code, out)
	}
	if code, out, _ := ferryCmd(t, url, "runs", "show", runID, "--json"); code != 0 || !strings.Contains(out, `"steps"`) {
		t.Errorf("runs show: %d\n%s", code, out)
	}
}

// TestUnreachableBroker: one line saying so, exit code 1.
func TestUnreachableBroker(t *testing.T) {
	code, out, errOut := ferryCmd(t, "nats://127.0.0.1:1", "services")
	if code != 1 || out != "" || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "cannot connect to nats://127.0.0.1:1") {
		t.Errorf("exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDev: ferry dev runs a broker other commands reach, and stops on
// its context's end.
func TestDev(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"dev", "--data-dir", dir, "--listen", "127.0.0.1:0"}, &out, &errOut)
	}()
	urlPattern := regexp.MustCompile(`broker (nats://127\.0\.0\.1:\d+)`)
	ferrytest.Eventually(t, func() bool { return urlPattern.MatchString(out.String()) }, "dev prints its broker's URL")
	url := urlPattern.FindStringSubmatch(out.String())[1]
	// and its dashboard, which answers on loopback.
	dashPattern := regexp.MustCompile(`dashboard: (http://127\.0\.0\.1:\d+/)`)
	ferrytest.Eventually(t, func() bool { return dashPattern.MatchString(out.String()) }, "dev prints its dashboard's URL")
	resp, err := http.Get(dashPattern.FindStringSubmatch(out.String())[1])
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("the dashboard: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if code, o, e := ferryCmd(t, url, "services", "--json"); code != 0 || strings.TrimSpace(o) != "[]" {
		t.Errorf("services on the dev broker: %d %q %q", code, o, e)
	}
	// A command started with the same data directory finds the broker.
	if code, o, e := ferryCmd(t, "", "--data-dir", dir, "services"); code != 0 || !strings.Contains(o, "no service answered") {
		t.Errorf("services through the data directory: %d %q %q", code, o, e)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("dev: exit %d: %s", code, errOut.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("dev did not stop")
	}
}
