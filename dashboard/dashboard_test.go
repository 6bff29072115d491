package dashboard_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/dashboard"
	"github.com/ferrygo/ferry/ferrytest"
)

type orderPlaced struct {
	OrderID string `json:"order_id"`
}

type report struct {
	Name string `json:"name"`
}

var (
	placed = ferry.Topic[orderPlaced]{Name: "order-placed", Subject: "dash.orders.placed"}
	render = ferry.Job[report, report]{Name: "render-report"}
)

// system starts a shop-like system: orders publishes order-placed (and
// runs the render-report job), billing consumes it and fails while
// broken is set.
func system(t *testing.T, broken *atomic.Bool) *ferrytest.Host {
	t.Helper()
	orders := ferry.MustNew("orders", "1.2.0", ferry.WithNATS())
	ferry.NewPublisher(orders, placed)
	ferry.HandleJob(orders, render, func(ctx context.Context, in *report, p *ferry.Progress) (*report, error) { return in, nil })
	billing := ferry.MustNew("billing", "1.0.0", ferry.WithNATS())
	ferry.Subscribe(billing, placed, "bill", func(ctx context.Context, e *orderPlaced) error {
		if broken.Load() {
			return ferry.Permanent(errors.New("billing is broken <script>alert(1)</script>"))
		}
		return nil
	}, ferry.SubscribeMaxDeliveries(2), ferry.SubscribeBackoff(10*time.Millisecond, 20*time.Millisecond))
	return ferrytest.Start(t, orders, billing)
}

// get fetches path from the dashboard and decodes its JSON into out.
func get(t *testing.T, s *dashboard.Server, path string, out any) int {
	t.Helper()
	resp, err := http.Get(strings.TrimSuffix(s.URL(), "/") + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// token reads the page's token, as its script does.
func token(t *testing.T, s *dashboard.Server) string {
	t.Helper()
	resp, err := http.Get(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	_, rest, ok := strings.Cut(string(page), `name="ferry-dashboard-token" content="`)
	tok, _, _ := strings.Cut(rest, `"`)
	if !ok || len(tok) < 32 {
		t.Fatalf("no token in the page:\n%s", page)
	}
	return tok
}

func post(t *testing.T, s *dashboard.Server, path, tok string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", strings.TrimSuffix(s.URL(), "/")+path, strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", strings.TrimSuffix(s.URL(), "/"))
	if tok != "" {
		req.Header.Set(dashboard.TokenHeader, tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func startDashboard(t *testing.T, h *ferrytest.Host) *dashboard.Server {
	t.Helper()
	s, err := dashboard.Start(context.Background(), h.Client, dashboard.Config{Interval: 100 * time.Millisecond, Logger: ferrytest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s
}

// TestSnapshotAndReplay: the snapshot lists the services, topics and
// job kinds; a dead letter appears, and a POST replay removes it.
func TestSnapshotAndReplay(t *testing.T) {
	var broken atomic.Bool
	broken.Store(true)
	h := system(t, &broken)
	s := startDashboard(t, h)
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL %s: want loopback", s.URL())
	}
	ctx := context.Background()
	if _, err := placed.Publish(ctx, h.Client, &orderPlaced{OrderID: "o-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := render.Enqueue(ctx, h.Client, &report{Name: "daily"}); err != nil {
		t.Fatal(err)
	}
	var snap dashboard.Snapshot
	ferrytest.Eventually(t, func() bool {
		snap = dashboard.Snapshot{}
		return get(t, s, "/api/snapshot", &snap) == 200 && len(snap.Services) == 2 && len(snap.DeadLetters.Items) == 1 &&
			len(snap.Jobs.Latest) > 0 && snap.Jobs.Latest[0].State == ferry.JobSucceeded
	}, "the snapshot shows two services, a dead letter and the job: %+v", &snap)
	if snap.Services[0].Name != "billing" || snap.Services[1].Name != "orders" || len(snap.Services[1].Instances) != 1 ||
		snap.Services[1].Versions[0] != "1.2.0" || len(snap.Services[1].Jobs) != 1 {
		t.Errorf("services: %+v", snap.Services)
	}
	if len(snap.Topics) != 1 || snap.Topics[0].Name != "order-placed" || len(snap.Topics[0].Consumers) != 1 {
		t.Errorf("topics: %+v", snap.Topics)
	}
	if len(snap.Jobs.Kinds) != 1 || snap.Jobs.Kinds[0].Job != "render-report" {
		t.Errorf("job kinds: %+v", snap.Jobs.Kinds)
	}
	dl := snap.DeadLetters.Items[0]
	if dl.Topic != "order-placed" || dl.Service != "billing" || dl.Consumer != "bill" || !strings.Contains(dl.Preview, "o-1") || snap.DeadLetters.Total != 1 {
		t.Errorf("dead letter: %+v", dl)
	}
	wantEdges := []dashboard.Edge{{Kind: "publish", From: "orders", To: "order-placed"}, {Kind: "consume", From: "order-placed", To: "billing", Label: "bill"}}
	for _, w := range wantEdges {
		found := false
		for _, e := range snap.Graph.Edges {
			found = found || e == w
		}
		if !found {
			t.Errorf("graph %+v lacks %+v", snap.Graph, w)
		}
	}

	// The actions: refused without the token; a replay with it.
	if status, body := post(t, s, "/api/dead-letters/1/replay", ""); status != 403 || body["code"] != "bad_token" {
		t.Errorf("replay without token: %d %v", status, body)
	}
	tok := token(t, s)
	if status, body := post(t, s, "/api/dead-letters/999999/replay", tok); status != 404 || body["code"] != "dead_letter_not_found" {
		t.Errorf("replay of a missing one: %d %v", status, body)
	}
	broken.Store(false)
	if status, body := post(t, s, "/api/dead-letters/"+jsonNumber(dl.Sequence)+"/replay", tok); status != 200 {
		t.Fatalf("replay: %d %v", status, body)
	}
	ferrytest.Eventually(t, func() bool {
		snap = dashboard.Snapshot{}
		return get(t, s, "/api/snapshot", &snap) == 200 && snap.DeadLetters.Total == 0 && len(snap.DeadLetters.Items) == 0
	}, "the dead letter leaves the list: %+v", &snap.DeadLetters)
}

func jsonNumber(n uint64) string { b, _ := json.Marshal(n); return string(b) }

// TestShutdownEndsStreams: Shutdown ends the live streams of connected
// browsers and returns.
func TestShutdownEndsStreams(t *testing.T) {
	var broken atomic.Bool
	h := system(t, &broken)
	s, err := dashboard.Start(context.Background(), h.Client, dashboard.Config{Interval: 50 * time.Millisecond, Logger: ferrytest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	var bodies []io.ReadCloser
	for range 3 {
		resp, err := http.Get(s.URL() + "api/events")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("events: %d %v", resp.StatusCode, resp.Header)
		}
		bodies = append(bodies, resp.Body)
	}
	// Each receives a snapshot.
	for _, b := range bodies {
		sc := bufio.NewScanner(b)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() && !strings.HasPrefix(sc.Text(), "data: {") {
		}
		if sc.Err() != nil {
			t.Fatal(sc.Err())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for _, b := range bodies {
		if _, err := io.Copy(io.Discard, b); err != nil {
			t.Errorf("the stream ended with %v, want its end", err)
		}
		b.Close()
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("a second shutdown: %v", err)
	}
}
