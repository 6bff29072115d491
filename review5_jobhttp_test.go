package ferry_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// startReportEndpoint is the test job's Accept endpoint, on a service that
// also runs the job with handler.
var startReportEndpoint = ferry.Endpoint[ferry.JobRequest[ReportRequest], ferry.JobAccepted[RenderedReport]]{
	Service: "reports", Name: "start-report", Method: http.MethodPost, Path: "/reports",
}

func startReportsHTTP(t *testing.T, handler ferry.JobHandler[ReportRequest, RenderedReport]) (*ferrytest.Host, string) {
	t.Helper()
	svc := ferry.MustNew("reports", "1.0.0", quiet)
	ferry.Accept(svc, startReportEndpoint, reportJob)
	ferry.HandleJob(svc, reportJob, handler, fastJobs...)
	h := ferrytest.Start(t, svc)
	return h, ferrytest.URL(t, svc)
}

// postReport posts a report request and returns the 202's record.
func postReport(t *testing.T, base, body, key string) ferry.JobRecord[RenderedReport] {
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
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /reports: %d %s", resp.StatusCode, data)
	}
	var rec ferry.JobRecord[RenderedReport]
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// finding 2: a job handler's error that is not a *ferry.Error (and the
// cause inside a *ferry.Error, and a panic's value) is stored verbatim in
// the record's last_error, and GET /jobs/{job_id} serves it to any caller
// of the Accept endpoint. An endpoint returning the same error answers
// "internal error; the request ID identifies it in the service's logs":
// the job resources leak what the endpoint path deliberately hides
// (connection strings, credentials, SQL, file paths, panic values).
func TestReview5JobRecordDoesNotLeakInternalErrors(t *testing.T) {
	const secret = "postgres://admin:hunter2@10.0.0.5/reports"
	_, base := startReportsHTTP(t, func(ctx context.Context, in *ReportRequest, p *ferry.Progress) (*RenderedReport, error) {
		if in.Name == "panics" {
			panic("nil map write at " + secret)
		}
		return nil, ferry.Permanent(errors.New("dial " + secret + ": password authentication failed"))
	})
	for _, name := range []string{"fails", "panics"} {
		rec := postReport(t, base, `{"name":"`+name+`"}`, "")
		var body string
		ferrytest.Eventually(t, func() bool {
			resp, err := http.Get(base + "/jobs/" + rec.ID)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			data, _ := io.ReadAll(resp.Body)
			body = string(data)
			return strings.Contains(body, `"state":"failed"`)
		}, "job %s fails", rec.ID)
		if strings.Contains(body, "hunter2") {
			t.Errorf("%s: GET /jobs/%s serves the handler's internal error text to the HTTP caller: %s", name, rec.ID, body)
		}
	}
}

// finding 3: Idempotency-Key is scoped "to the caller" by the principal's
// subject only; an Accept endpoint without Auth (or any caller without a
// principal) shares one key space, so two different callers who send the
// same key (a guessable one: an order number, "retry-1") get the same job:
// the second caller's request is dropped and it is answered the first
// caller's job, whose record — input-derived result included — it can now
// read and cancel. JobRequest's doc promises "from the same caller".
func TestReview5IdempotencyKeyIsNotSharedByAnonymousCallers(t *testing.T) {
	_, base := startReportsHTTP(t, func(ctx context.Context, in *ReportRequest, p *ferry.Progress) (*RenderedReport, error) {
		return &RenderedReport{URL: "https://reports.example/" + in.Name}, nil
	})
	alice := postReport(t, base, `{"name":"alice-salaries"}`, "order-1")
	bob := postReport(t, base, `{"name":"bob-report"}`, "order-1")
	if alice.ID == bob.ID {
		t.Errorf("two anonymous callers with the same Idempotency-Key share job %s: the second caller's input is dropped and it is given the first's job", alice.ID)
	}
}
