// Command reports hands long work to a durable job and answers at once:
// POST /reports answers 202 Accepted with the job's URL; the job renders
// the report page by page on the same service (any replica would do),
// reporting its progress; GET /jobs/{job_id}/events follows it live.
//
//	go run ./examples/reports                      # http://localhost:8000, embedded broker
//	curl -si localhost:8000/reports -H 'Content-Type: application/json' -d '{"title":"Q3","pages":5}'
//	curl -N localhost:8000/jobs/<job_id>/events    # the record at each change, until it ends
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/reports/reportsapi"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("reports", flag.ContinueOnError)
	page := fs.Duration("page", time.Second, "simulated work per page")
	cfg, err := ferry.LoadConfig(fs, args)
	if err != nil {
		return err
	}
	svc, err := newService(*page, ferry.WithConfig(cfg))
	if err != nil {
		return err
	}
	return ferry.Run(ctx, svc)
}

// newService builds the reports service: the endpoint that starts a
// report, and the worker that renders it.
func newService(page time.Duration, opts ...ferry.Option) (*ferry.Service, error) {
	svc, err := ferry.New("reports", "1.0.0", append([]ferry.Option{
		ferry.WithDescription("Renders reports in durable jobs: 202 Accepted, then follow the job."),
	}, opts...)...)
	if err != nil {
		return nil, err
	}
	ferry.Accept(svc, reportsapi.StartReport, reportsapi.Render)
	ferry.HandleJob(svc, reportsapi.Render, render(page), ferry.JobConcurrency(8))
	return svc, nil
}

// render renders a report page by page, reporting progress after each,
// and gives up when its context ends (cancelled, timed out, shutdown).
func render(page time.Duration) ferry.JobHandler[reportsapi.ReportRequest, reportsapi.Report] {
	return func(ctx context.Context, in *reportsapi.ReportRequest, p *ferry.Progress) (*reportsapi.Report, error) {
		for i := range in.Pages {
			t := time.NewTimer(page)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			}
			p.Set(float64(i+1)*100/float64(in.Pages), fmt.Sprintf("page %d of %d", i+1, in.Pages))
		}
		slug := strings.ToLower(strings.ReplaceAll(in.Title, " ", "-"))
		return &reportsapi.Report{Title: in.Title, Pages: in.Pages, URL: "/files/" + ferry.JobFromContext(ctx) + "/" + slug + ".pdf"}, nil
	}
}
