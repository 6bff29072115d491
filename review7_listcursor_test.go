package ferry_test

// finding 2: a cursor at the top of the uint64 range ("3w5e11264sgsf",
// math.MaxUint64 in base 36) parses, then After+1 wraps to 0 and the
// broker rejects the consumer: the caller gets a wrapped internal
// JetStream error instead of the documented 400 invalid_job_list.

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

func TestReview7ListCursorOverflow(t *testing.T) {
	svc := ferry.MustNew("reports", "1.0.0", ferry.WithoutHTTP(), quiet)
	h := ferrytest.Start(t, svc)
	ctx := context.Background()
	if _, err := thumbJob.Enqueue(ctx, h.Client, &ReportRequest{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	cursor := strconv.FormatUint(math.MaxUint64, 36)
	recs, next, err := ferry.ListJobs(ctx, h.Client, ferry.JobFilter{After: cursor}, 10)
	var fe *ferry.Error
	if err != nil && !(errors.As(err, &fe) && fe.Status == http.StatusBadRequest) {
		t.Fatalf("cursor %q: %v (want a 400 invalid_job_list or an empty last page)", cursor, err)
	}
	if err == nil && (len(recs) != 0 || next != "") {
		t.Fatalf("cursor %q: %d records, next %q", cursor, len(recs), next)
	}
}
