package ferry

// AcceptWorkflow binds ep as an endpoint that starts a run of wf: it
// stores the run with the request body as its input and answers 202
// Accepted at once, with the run's URL in Location and its record. It is
// [Accept] for a workflow, and serves the same resources, under /runs
// unless [AcceptJobPath] says otherwise:
//
//   - GET /runs/{job_id}: the run's record — state, attempts, what it
//     waits for, and the typed result once it succeeded;
//   - GET /runs/{job_id}/events: Server-Sent Events, the record at each
//     change, until the run ends;
//   - DELETE /runs/{job_id}: cancel it ([Workflow.Cancel]).
//
// An Idempotency-Key header makes a retried request start one run.
func AcceptWorkflow[In, Out any](svc *Service, ep Endpoint[JobRequest[In], JobAccepted[Out]], wf Workflow[In, Out], opts ...AcceptOption) {
	Accept(svc, ep, wf.job(), append([]AcceptOption{AcceptJobPath("/runs")}, opts...)...)
}
