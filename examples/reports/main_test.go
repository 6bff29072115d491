package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/reports/reportsapi"
	"github.com/ferrygo/ferry/ferrytest"
)

var quiet = ferry.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))

// post starts a report and returns the response and its job record.
func post(t *testing.T, base, body, key string) (*http.Response, ferry.JobRecord[reportsapi.Report]) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/reports", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rec ferry.JobRecord[reportsapi.Report]
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusAccepted {
		if err := json.Unmarshal(data, &rec); err != nil {
			t.Fatalf("%s: %v", data, err)
		}
	}
	return resp, rec
}

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	name string
	rec  ferry.JobRecord[reportsapi.Report]
}

// follow reads a job's event stream to its end.
func follow(t *testing.T, url string) []sseEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var out []sseEvent
	var ev sseEvent
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.rec); err != nil {
				t.Fatal(err)
			}
		case line == "" && ev.name != "":
			out = append(out, ev)
			ev = sseEvent{}
		}
	}
	return out
}

func TestStartAndFollowAReport(t *testing.T) {
	svc, err := newService(50*time.Millisecond, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ferrytest.Start(t, svc)
	base := ferrytest.URL(t, svc)

	resp, rec := post(t, base, `{"title":"Q3 Sales","pages":4}`, "")
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Location") != "/jobs/"+rec.ID || rec.State != ferry.JobQueued && rec.State != ferry.JobRunning {
		t.Fatalf("POST /reports: %d, Location %q, record %+v", resp.StatusCode, resp.Header.Get("Location"), rec)
	}
	events := follow(t, base+resp.Header.Get("Location")+"/events")
	if len(events) < 2 {
		t.Fatalf("events %+v: want the current state, progress, and the end", events)
	}
	last := events[len(events)-1]
	if last.name != "succeeded" || last.rec.Result == nil || last.rec.Result.Pages != 4 || last.rec.Progress == nil || last.rec.Progress.Percent != 100 {
		t.Errorf("last event %+v: want succeeded with the report", last)
	}
	progressed := false
	for _, e := range events {
		progressed = progressed || e.rec.Progress != nil && e.rec.Progress.Percent > 0 && e.rec.Progress.Percent < 100
	}
	if !progressed {
		t.Errorf("no progress among %d events", len(events))
	}
	// A late follower gets the final record at once, and the stream ends.
	if again := follow(t, base+resp.Header.Get("Location")+"/events"); len(again) != 1 || again[0].name != "succeeded" {
		t.Errorf("late follower: %+v", again)
	}
	get, err := http.Get(base + resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	var got ferry.JobRecord[reportsapi.Report]
	_ = json.NewDecoder(get.Body).Decode(&got)
	get.Body.Close()
	if got.State != ferry.JobSucceeded || got.Result == nil || !strings.HasSuffix(got.Result.URL, "/q3-sales.pdf") {
		t.Errorf("GET the job: %+v", got)
	}
}

func TestReportRequests(t *testing.T) {
	svc, err := newService(time.Hour, quiet) // jobs never finish on their own
	if err != nil {
		t.Fatal(err)
	}
	ferrytest.Start(t, svc)
	base := ferrytest.URL(t, svc)

	tests := []struct {
		name   string
		method string
		path   string
		body   string
		status int
	}{
		{"invalid body", http.MethodPost, "/reports", `{"title":"","pages":0}`, http.StatusUnprocessableEntity},
		{"malformed job ID", http.MethodGet, "/jobs/not-an-id", "", http.StatusUnprocessableEntity},
		{"unknown job", http.MethodGet, "/jobs/aaaaaaaaaaaaaaaaaaaaaaaaaa", "", http.StatusNotFound},
		{"unknown job's events", http.MethodGet, "/jobs/aaaaaaaaaaaaaaaaaaaaaaaaaa/events", "", http.StatusNotFound},
		{"cancel an unknown job", http.MethodDelete, "/jobs/aaaaaaaaaaaaaaaaaaaaaaaaaa", "", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, base+tt.path, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
				t.Errorf("%d %s; want %d problem", resp.StatusCode, resp.Header.Get("Content-Type"), tt.status)
			}
		})
	}

	// An Idempotency-Key makes a retried POST start one job.
	first, a := post(t, base, `{"title":"Once","pages":1}`, "k-1")
	second, b := post(t, base, `{"title":"Once","pages":1}`, "k-1")
	if first.StatusCode != http.StatusAccepted || second.StatusCode != http.StatusAccepted || a.ID != b.ID {
		t.Fatalf("retried POST: %d %s, %d %s; want one job", first.StatusCode, a.ID, second.StatusCode, b.ID)
	}
	// DELETE cancels it: the handler's context ends and the job ends cancelled.
	req, _ := http.NewRequest(http.MethodDelete, base+"/jobs/"+a.ID, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	events := follow(t, base+"/jobs/"+a.ID+"/events")
	if len(events) == 0 || events[len(events)-1].name != "cancelled" {
		t.Errorf("events after cancel: %+v", events)
	}
}

func TestReportsOpenAPI(t *testing.T) {
	svc, err := newService(time.Second, quiet)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := json.Marshal(svc.API().OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"/reports"`, `"/jobs/{job_id}"`, `"/jobs/{job_id}/events"`, `"202"`, `"text/event-stream"`, `"Idempotency-Key"`, `"Location"`} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("the OpenAPI document lacks %s", want)
		}
	}
}

func TestReportsAsyncAPI(t *testing.T) {
	svc, err := newService(time.Second, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ferrytest.Start(t, svc)
	resp, err := http.Get(ferrytest.URL(t, svc) + "/asyncapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	doc, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`"job-render-report"`, `"ferry.job.render-report.run"`, `"publish-job-render-report"`, `"receive-job-render-report-worker"`, `reportsapi.ReportRequest`} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("the AsyncAPI document lacks %s:\n%s", want, doc)
		}
	}
}
