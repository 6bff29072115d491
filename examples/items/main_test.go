package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/items/itemsapi"
)

var quiet = ferry.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))

func get(t *testing.T, h http.Handler, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec
}

func TestItems(t *testing.T) {
	svc, err := newService(0, quiet)
	if err != nil {
		t.Fatal(err)
	}
	h := svc.Handler()
	tests := []struct {
		target   string
		status   int
		body     string // exact, for 200
		location string // of the field error, for 422
	}{
		{target: "/items/42", status: 200, body: `{"item_id":42}`},
		{target: "/items/-7", status: 200, body: `{"item_id":-7}`},
		{target: "/items/9223372036854775807", status: 200, body: `{"item_id":9223372036854775807}`},
		{target: "/items/abc", status: 422, location: "path.item_id"},
		{target: "/items/-", status: 422, location: "path.item_id"},
		{target: "/items/1.5", status: 422, location: "path.item_id"},
		{target: "/items/9223372036854775808", status: 422, location: "path.item_id"},
		{target: "/items/99999999999999999999", status: 422, location: "path.item_id"},
		{target: "/items", status: 404},
		{target: "/items/1/extra", status: 404},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			rec := get(t, h, tt.target)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status == 200 {
				if rec.Body.String() != tt.body || rec.Header().Get("Content-Type") != "application/json" {
					t.Errorf("body %q (%s), want exactly %q", rec.Body, rec.Header().Get("Content-Type"), tt.body)
				}
				if rec.Header().Get("Link") != "" {
					t.Errorf("unexpected Link header %q", rec.Header().Get("Link"))
				}
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			var p struct {
				Status int
				Errors []struct{ Location string }
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != tt.status {
				t.Fatalf("problem %s (%v)", rec.Body, err)
			}
			if tt.location != "" && (len(p.Errors) == 0 || p.Errors[0].Location != tt.location) {
				t.Errorf("errors %+v, want one at %s", p.Errors, tt.location)
			}
		})
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/items/1", nil))
	if rec.Code != 405 || rec.Header().Get("Content-Type") != "application/problem+json" || !strings.Contains(strings.Join(rec.Header().Values("Allow"), ","), "GET") {
		t.Errorf("POST: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
}

func TestOpenAPIDocument(t *testing.T) {
	svc, _ := newService(0, quiet)
	rec := get(t, svc.Handler(), "/openapi.json")
	var doc struct {
		OpenAPI string `json:"openapi"`
		Paths   map[string]map[string]struct {
			OperationID string `json:"operationId"`
			Parameters  []struct {
				Name, In string
				Schema   struct{ Type string }
			}
		}
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	op := doc.Paths["/items/{item_id}"]["get"]
	if doc.OpenAPI != "3.1.0" || op.OperationID != "get-item" || len(op.Parameters) != 1 ||
		op.Parameters[0].Name != "item_id" || op.Parameters[0].In != "path" || op.Parameters[0].Schema.Type != "integer" {
		t.Errorf("document: openapi %q, operation %+v", doc.OpenAPI, op)
	}
	if yaml := get(t, svc.Handler(), "/openapi.yaml"); yaml.Code != 200 || !strings.Contains(yaml.Body.String(), "/items/{item_id}") {
		t.Errorf("/openapi.yaml: %d", yaml.Code)
	}
}

func TestDocsAreLocal(t *testing.T) {
	svc, _ := newService(0, quiet)
	h := svc.Handler()
	rec := get(t, h, "/docs")
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("/docs: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(rec.Body.String(), -1)
	if len(refs) < 2 {
		t.Fatalf("the page references %d assets", len(refs))
	}
	for _, ref := range refs {
		u := ref[1]
		if !strings.HasPrefix(u, "/") || strings.HasPrefix(u, "//") {
			t.Errorf("non-local reference %q", u)
			continue
		}
		if asset := get(t, h, u); asset.Code != 200 || asset.Body.Len() == 0 {
			t.Errorf("asset %s: %d", u, asset.Code)
		}
	}
}

// TestConcurrentRequests shows the seed's point without timing: N requests
// are inside the handler's wait at the same moment.
func TestConcurrentRequests(t *testing.T) {
	const n = 200
	var inside, peak atomic.Int32
	count := func(next ferry.Handler) ferry.Handler {
		return func(ctx context.Context, req *ferry.Request) error {
			v := inside.Add(1)
			for p := peak.Load(); v > p && !peak.CompareAndSwap(p, v); p = peak.Load() {
			}
			defer inside.Add(-1)
			return next(ctx, req)
		}
	}
	// An hour of simulated I/O; the test ends it by cancelling the requests.
	svc, _ := newService(time.Hour, quiet, ferry.WithMiddleware(count))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/items/"+strconv.Itoa(i), nil).WithContext(ctx)
			svc.Handler().ServeHTTP(rec, req)
		})
	}
	deadline := time.Now().Add(30 * time.Second)
	for peak.Load() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := peak.Load(); got != n {
		t.Fatalf("%d of %d requests were in the handler at once", got, n)
	}
	cancel()
	wg.Wait()
	if inside.Load() != 0 {
		t.Errorf("%d requests still inside after cancellation", inside.Load())
	}
}

// TestCancelledRequestStopsWaiting: a request whose caller goes away stops
// its hour-long wait at once.
func TestCancelledRequestStopsWaiting(t *testing.T) {
	handler := getItem(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := handler(ctx, &itemsapi.GetItemInput{ItemID: 1})
		done <- err
	}()
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("handler returned %v, want context.Canceled", err)
	}
}

func TestRunFlags(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := run(ctx, []string{"-addr", "nonsense"}); err == nil || !strings.Contains(err.Error(), "addr") {
		t.Errorf("run with a bad -addr = %v", err)
	}
	if err := run(ctx, []string{"-delay", "soon"}); err == nil {
		t.Error("run with a bad -delay succeeded")
	}
}
