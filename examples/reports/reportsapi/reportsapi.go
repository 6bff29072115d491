// Package reportsapi is the contract of the reports service: the job that
// renders a report, and the endpoint that starts one. Callers import it
// without the handlers.
package reportsapi

import (
	"net/http"

	"github.com/ferrygo/ferry"
)

// ReportRequest is what to render.
type ReportRequest struct {
	Title string `json:"title" minLength:"1" maxLength:"200" doc:"The report's title."`
	Pages int    `json:"pages" minimum:"1" maximum:"100" doc:"How many pages to render (each takes the service's -page time)."`
}

// Report is a rendered report.
type Report struct {
	Title string `json:"title"`
	Pages int    `json:"pages"`
	URL   string `json:"url" doc:"Where the rendered report is."`
}

// Render is the job that renders a report, page by page, reporting its
// progress.
var Render = ferry.Job[ReportRequest, Report]{Name: "render-report", Description: "Renders a report, page by page."}

// StartReport starts rendering a report: 202 Accepted, with the job's URL
// in Location. GET it for the result, GET …/events to follow it.
var StartReport = ferry.Endpoint[ferry.JobRequest[ReportRequest], ferry.JobAccepted[Report]]{
	Service:     "reports",
	Name:        "start-report",
	Method:      http.MethodPost,
	Path:        "/reports",
	Summary:     "Start rendering a report",
	Description: "Answers 202 Accepted at once; the report renders in a durable job.",
	Tags:        []string{"reports"},
}
