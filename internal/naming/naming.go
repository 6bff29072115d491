// Package naming holds Ferry's naming scheme in one place: which service,
// version and endpoint names are valid, and the subjects, stream, consumer
// and bucket names and headers derived from them.
//
// Names are part of the wire contract: they become NATS subjects, metric
// labels and OpenAPI operation IDs, so they are explicit and checked once,
// when a service or contract is declared.
package naming

import (
	"fmt"
	"regexp"
	"strings"
)

// The patterns follow the NATS service protocol (nats.go micro), so every
// Ferry service can be listed and called by standard NATS tools.
var (
	serviceNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	// semverPattern is the semantic versioning 2.0.0 grammar, as micro checks it.
	semverPattern = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)
	// endpointNamePattern keeps endpoint names usable as one subject token
	// and as a metric label value.
	endpointNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

// MaxNameLength bounds service and endpoint names so subjects stay short.
const MaxNameLength = 64

// CheckServiceName reports whether name is a valid service name.
func CheckServiceName(name string) error {
	return check("service name", name, serviceNamePattern)
}

// CheckEndpointName reports whether name is a valid endpoint name.
func CheckEndpointName(name string) error {
	return check("endpoint name", name, endpointNamePattern)
}

// CheckVersion reports whether version is a semantic version (for example 1.2.0).
func CheckVersion(version string) error {
	if !semverPattern.MatchString(version) {
		return fmt.Errorf("version %q is not a semantic version such as 1.0.0", version)
	}
	return nil
}

func check(what, name string, pattern *regexp.Regexp) error {
	switch {
	case name == "":
		return fmt.Errorf("%s is empty", what)
	case len(name) > MaxNameLength:
		return fmt.Errorf("%s %q is longer than %d characters", what, name, MaxNameLength)
	case !pattern.MatchString(name):
		return fmt.Errorf("%s %q may contain only letters, digits, '-' and '_'", what, name)
	}
	return nil
}

// Subjects and groups of endpoints served over NATS.
const (
	// SubjectPrefix starts every subject Ferry defines.
	SubjectPrefix = "ferry"
	// QueueGroup is the queue group every replica of an endpoint joins, so
	// each call reaches one replica (the NATS service protocol's default).
	QueueGroup = "q"
)

// DocsSubject returns the subject a service answers its document of
// kind ("openapi" or "asyncapi") on: ferry.docs.<service>.<kind>, four
// tokens, so no endpoint's subject is one.
func DocsSubject(service, kind string) string {
	return SubjectPrefix + ".docs." + service + "." + kind
}

// EndpointSubject returns the subject an endpoint is served on:
// ferry.<service>.<endpoint>. Both names are checked single tokens.
func EndpointSubject(service, endpoint string) string {
	return SubjectPrefix + "." + service + "." + endpoint
}

// Headers of the request/reply protocol (docs/protocol.md). NATS header
// names are case-sensitive: Ferry writes these spellings and reads any.
const (
	// HeaderPath carries the path parameters, form-encoded: item_id=42.
	HeaderPath = "Ferry-Path"
	// HeaderQuery carries the query string, without '?'.
	HeaderQuery = "Ferry-Query"
	// HeaderTimeout carries the caller's remaining time budget in whole
	// milliseconds, relative (clocks differ between machines).
	HeaderTimeout = "Ferry-Timeout"
	// HeaderStatus carries the HTTP status of a reply.
	HeaderStatus = "Ferry-Status"
	// HeaderServiceError and HeaderServiceErrorCode are the NATS service
	// protocol's error headers, set on every error reply.
	HeaderServiceError     = "Nats-Service-Error"
	HeaderServiceErrorCode = "Nats-Service-Error-Code"
)

// Events (docs/protocol.md, "Events").
const (
	// DeadLetterStream stores every dead letter, on DeadLetterPrefix.>.
	DeadLetterStream = "ferry-deadletters"
	// DeadLetterPrefix starts the subjects of dead letters.
	DeadLetterPrefix = "ferry.dlq"
	// ReplayPrefix starts the subjects that deliver a message again to one
	// consumer only.
	ReplayPrefix = "ferry.replay"

	// Headers of events and dead letters.
	HeaderMsgID         = "Nats-Msg-Id"
	HeaderSource        = "Ferry-Source"
	HeaderDLQTopic      = "Ferry-Dlq-Topic"
	HeaderDLQService    = "Ferry-Dlq-Service"
	HeaderDLQConsumer   = "Ferry-Dlq-Consumer"
	HeaderDLQError      = "Ferry-Dlq-Error"
	HeaderDLQDeliveries = "Ferry-Dlq-Deliveries"
	HeaderDLQStream     = "Ferry-Dlq-Stream"
	HeaderDLQSequence   = "Ferry-Dlq-Sequence"
	HeaderDLQSubject    = "Ferry-Dlq-Subject"
	HeaderDLQTime       = "Ferry-Dlq-Time"
	HeaderDLQMsgID      = "Ferry-Dlq-Msg-Id"
)

// CheckTopicName reports whether name is a valid topic name.
func CheckTopicName(name string) error {
	return check("topic name", name, endpointNamePattern)
}

// CheckSubject reports whether subject is a valid subject to publish
// events on: dot-separated tokens without wildcards or spaces, outside the
// namespaces Ferry and NATS reserve.
func CheckSubject(subject string) error {
	if subject == "" {
		return fmt.Errorf("subject is empty")
	}
	for _, tok := range strings.Split(subject, ".") {
		if tok == "" || strings.ContainsAny(tok, " \t\r\n*>") {
			return fmt.Errorf("subject %q must be dot-separated tokens without spaces or wildcards", subject)
		}
	}
	if strings.HasPrefix(subject, SubjectPrefix+".") || strings.HasPrefix(subject, "$") || strings.HasPrefix(subject, "_INBOX.") {
		return fmt.Errorf("subject %q is in a reserved namespace (ferry., $, _INBOX.)", subject)
	}
	return nil
}

// TopicStream returns the stream that stores a topic: ferry-<topic>.
func TopicStream(topic string) string { return "ferry-" + topic }

// ReplaySubject returns the subject on which a message reaches only the
// named consumer of a topic again: ferry.replay.<topic>.<service>.<consumer>.
func ReplaySubject(topic, service, consumer string) string {
	return ReplayPrefix + "." + topic + "." + service + "." + consumer
}

// ReplayWildcard returns the replay subjects of a topic, for its stream.
func ReplayWildcard(topic string) string { return ReplayPrefix + "." + topic + ".>" }

// DeadLetterSubject returns where a consumer's dead letters of a topic go:
// ferry.dlq.<topic>.<service>.<consumer>.
func DeadLetterSubject(topic, service, consumer string) string {
	return DeadLetterPrefix + "." + topic + "." + service + "." + consumer
}

// Durable returns the durable consumer name of a service's subscription,
// shared by all its replicas: <service>~<consumer> ('~' cannot occur in
// either name, so the pair is unambiguous).
func Durable(service, consumer string) string { return service + "~" + consumer }

// StateBucket is the key-value bucket of a service's durable state: the
// idempotency claims and delivery records of its subscriptions.
func StateBucket(service string) string { return "ferry-state-" + service }

// Jobs (docs/jobs.md).
const (
	// JobBucket is the key-value bucket of every job's record.
	JobBucket = "ferry-jobs"
	// StepBucket holds workflow runs' recorded steps, compensations and
	// signals: apart from the records, so that removing a finished run's
	// steps does not make the broker recount the records' watchers.
	StepBucket = "ferry-steps"
	// JobPrefix starts the subjects of jobs: ferry.job.<name>.…
	JobPrefix = "ferry.job"
	// JobConsumer is the durable consumer every replica of a job kind's
	// worker service shares.
	JobConsumer = "worker"
	// JobDeadLetterConsumer stands for the consumer in a job's dead
	// letters (ferry.dlq.<job>.<service>.~job): no subscription's consumer
	// name can contain '~'.
	JobDeadLetterConsumer = "~job"

	// Headers of a job's message.
	HeaderJobID          = "Ferry-Job-Id"
	HeaderJobMaxAttempts = "Ferry-Job-Max-Attempts"
	HeaderJobTimeout     = "Ferry-Job-Timeout"
	HeaderJobEnqueued    = "Ferry-Job-Enqueued"
	HeaderJobRunAt       = "Ferry-Job-Run-At"
	HeaderJobKey         = "Ferry-Job-Key"
	// HeaderJobAttempts carries the runs a job had before this message (a
	// retry rescheduled as a new message).
	HeaderJobAttempts = "Ferry-Job-Attempts"
	// HeaderJobPriority carries a job's priority when it is not normal.
	HeaderJobPriority = "Ferry-Job-Priority"
	// HeaderJobReplay marks a failed job's message replayed from the
	// dead-letter stream: it runs again although its record says failed.
	HeaderJobReplay = "Ferry-Job-Replay"
	// HeaderJobSchedule names the schedule of a periodic job's tick and
	// of the run it starts; HeaderJobCron is the tick's expression.
	HeaderJobSchedule = "Ferry-Job-Schedule"
	HeaderJobCron     = "Ferry-Job-Cron"
	// HeaderWorkflowWake carries the suspension a workflow run's message
	// wakes (absent: its start); HeaderWorkflowParent the run that started
	// a child run.
	HeaderWorkflowWake   = "Ferry-Workflow-Wake"
	HeaderWorkflowParent = "Ferry-Workflow-Parent"
	// JobTickConsumer is the durable consumer of a job kind's ticks,
	// shared by the replicas of its worker service.
	JobTickConsumer = "ticks"
)

// CheckScheduleName reports whether name is a valid name of a periodic
// job's schedule.
func CheckScheduleName(name string) error {
	return check("schedule name", name, endpointNamePattern)
}

// JobCronSubject holds a periodic job's schedule: one JetStream message
// schedule per (job, schedule name), which publishes a tick on
// JobTickSubject each time it fires.
func JobCronSubject(job, schedule string) string { return JobPrefix + "." + job + ".cron." + schedule }

// JobTickSubject is where a job kind's schedules publish their ticks;
// the worker service turns each into a run.
func JobTickSubject(job string) string { return JobPrefix + "." + job + ".tick" }

// CheckJobName reports whether name is a valid job kind name.
func CheckJobName(name string) error {
	return check("job name", name, endpointNamePattern)
}

// JobStream returns the stream of a job kind: ferryjob-<name> (a topic's
// stream always starts with "ferry-", so the two never meet).
func JobStream(job string) string { return "ferryjob-" + job }

// JobRunSubject is where a job kind's jobs wait for a worker.
func JobRunSubject(job string) string { return JobPrefix + "." + job + ".run" }

// JobScheduleSubject holds a job until its time: a JetStream message
// schedule that then publishes it on JobRunSubject.
func JobScheduleSubject(job, id string) string { return JobPrefix + "." + job + ".at." + id }

// JobCancelSubject is where a cancel tells the replica running a job to
// cancel its handler (core NATS; the record is the durable word).
func JobCancelSubject(job, id string) string { return JobPrefix + "." + job + ".cancel." + id }

// JobSubjects are the subjects of a job kind's stream: the run subject
// (normal priority), the run subjects of the other priorities
// (….run.high, ….run.low), and the schedules.
func JobSubjects(job string) []string {
	return []string{JobRunSubject(job), JobRunSubject(job) + ".*", JobPrefix + "." + job + ".at.*", JobCronSubject(job, "*"), JobTickSubject(job)}
}
