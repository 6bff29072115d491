package metrics

import (
	"context"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrygo/ferry/internal/jobs"
	"github.com/ferrygo/ferry/internal/telemetry"
)

// JobKind is a job kind a service runs, which the jobs collector reports
// on.
type JobKind struct {
	Service string
	// Queue names the kind and its queue in JetStream: its stream and its
	// priorities' consumers, whose figures are summed.
	Queue jobs.Kind
}

// JobsOptions configures NewJobsCollector.
type JobsOptions struct {
	// JetStream returns the host's JetStream, or nil while there is none.
	JetStream func() jetstream.JetStream
	// Kinds are the job kinds of the host's services.
	Kinds []JobKind
	// MaxAge, Wait and Timeout are as in SubscriptionsOptions (defaults
	// 1s, 500ms and 5s).
	MaxAge, Wait, Timeout time.Duration
}

var (
	jobsQueuedDesc = prometheus.NewDesc("ferry_jobs_queued",
		"Jobs ready to run that no worker took yet (the kind's consumer's pending messages).",
		[]string{LabelService, LabelJob}, nil)
	jobsRunningDesc = prometheus.NewDesc("ferry_jobs_running",
		"Jobs a worker took and did not finish: running, or waiting out a retry's backoff (the consumer's ack-pending messages).",
		[]string{LabelService, LabelJob}, nil)
	jobsScheduledDesc = prometheus.NewDesc("ferry_jobs_scheduled",
		"Jobs waiting for their time (message schedules in the kind's stream).",
		[]string{LabelService, LabelJob}, nil)
	jobsLagDesc = prometheus.NewDesc("ferry_job_queue_lag_seconds",
		"Age of the oldest queued job: time since it became ready to run; 0 when none is queued.",
		[]string{LabelService, LabelJob}, nil)
	jobsPausedDesc = prometheus.NewDesc("ferry_job_paused",
		"1 while the job kind is paused (PauseJobs), else 0.",
		[]string{LabelService, LabelJob}, nil)
	jobsReadAgeDesc = prometheus.NewDesc("ferry_job_reading_age_seconds",
		"Age of the job queue figures: time since JetStream was last read successfully.", nil, nil)
)

// JobsCollector reports on a host's job kinds, read from JetStream like
// the subscriptions collector's lag: at most every MaxAge, in the
// background, a scrape waiting at most Wait for a reading (and otherwise
// answering with the last one). A reading costs a request for each
// kind's stream and each of its consumers (one per priority), and one
// for each priority with queued jobs (its oldest one's time).
type JobsCollector struct {
	opts JobsOptions
	read func(ctx context.Context) jobsReading

	readings cached[jobsReading]

	// Handles kept between readings.
	streams   []jetstream.Stream
	consumers [][]jetstream.Consumer // per kind, per lane (nil: none yet)
}

type jobsReading struct {
	queues []jobs.Queue
	known  []bool
	at     []time.Time // when each queue was read
	fresh  bool
}

// NewJobsCollector returns the collector; register it with
// Metrics.Register.
func NewJobsCollector(opts JobsOptions) *JobsCollector {
	if opts.MaxAge <= 0 {
		opts.MaxAge = time.Second
	}
	if opts.Wait <= 0 {
		opts.Wait = 500 * time.Millisecond
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	c := &JobsCollector{opts: opts, streams: make([]jetstream.Stream, len(opts.Kinds)), consumers: make([][]jetstream.Consumer, len(opts.Kinds))}
	c.read = c.readJetStream
	return c
}

// Describe implements prometheus.Collector.
func (c *JobsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{jobsQueuedDesc, jobsRunningDesc, jobsScheduledDesc, jobsLagDesc, jobsPausedDesc, jobsReadAgeDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *JobsCollector) Collect(ch chan<- prometheus.Metric) {
	r, at := c.current()
	if at.IsZero() {
		return
	}
	for i, k := range c.opts.Kinds {
		if !r.known[i] {
			continue
		}
		q := r.queues[i]
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, k.Service, k.Queue.Job)
		}
		gauge(jobsQueuedDesc, float64(q.Queued))
		gauge(jobsRunningDesc, float64(q.Running))
		gauge(jobsScheduledDesc, float64(q.Scheduled))
		lag := 0.0
		if !q.OldestQueued.IsZero() {
			lag = max(0, r.at[i].Sub(q.OldestQueued).Seconds())
		}
		gauge(jobsLagDesc, lag)
		paused := 0.0
		if !q.PausedUntil.IsZero() && q.PausedUntil.After(time.Now()) {
			paused = 1
		}
		gauge(jobsPausedDesc, paused)
	}
	ch <- prometheus.MustNewConstMetric(jobsReadAgeDesc, prometheus.GaugeValue, time.Since(at).Seconds())
}

// current returns the latest reading and when it was made (zero: none
// yet); see cached.current.
func (c *JobsCollector) current() (jobsReading, time.Time) {
	return c.readings.current(c.opts.MaxAge, c.opts.Wait, c.opts.Timeout, c.read, func(r jobsReading) bool { return r.fresh })
}

// readJetStream reads each kind's queue. A kind that cannot be read
// keeps its previous figures; one whose worker never started (no stream
// or consumer yet) has none.
func (c *JobsCollector) readJetStream(ctx context.Context) jobsReading {
	prev := c.readings.previous()
	n := len(c.opts.Kinds)
	r := jobsReading{queues: make([]jobs.Queue, n), known: make([]bool, n), at: make([]time.Time, n)}
	if prev.queues != nil {
		copy(r.queues, prev.queues)
		copy(r.known, prev.known)
		copy(r.at, prev.at)
	}
	var js jetstream.JetStream
	if c.opts.JetStream != nil {
		js = c.opts.JetStream()
	}
	if js == nil {
		return r
	}
	for i, k := range c.opts.Kinds {
		if c.consumers[i] == nil || slices.Contains(c.consumers[i], nil) {
			// Found again while a priority's consumer is missing (the
			// kind's workers create them).
			st, conss, err := jobs.Consumers(ctx, js, k.Queue)
			if err != nil {
				continue
			}
			c.streams[i], c.consumers[i] = st, conss
		}
		q, err := jobs.ReadQueueOf(ctx, c.streams[i], c.consumers[i], k.Queue)
		if err != nil {
			c.streams[i], c.consumers[i] = nil, nil // deleted, or the broker is away: find them again next time
			continue
		}
		r.queues[i], r.known[i], r.at[i], r.fresh = q, true, time.Now(), true
	}
	return r
}

// jobSeries are the series a job kind's runs feed.
type jobSeries struct {
	succeeded, failed, cancelled prometheus.Counter
	duration                     prometheus.Observer
}

// job returns the series of a job run's kind.
func (ob *observer) job(o *telemetry.Outcome) *jobSeries {
	if s, ok := ob.jobs.get(o.Name); ok {
		return s
	}
	return ob.jobs.add(o.Name, func() *jobSeries {
		return &jobSeries{
			succeeded: ob.m.jobsFinished.WithLabelValues(ob.service, o.Name, "succeeded"),
			failed:    ob.m.jobsFinished.WithLabelValues(ob.service, o.Name, "failed"),
			cancelled: ob.m.jobsFinished.WithLabelValues(ob.service, o.Name, "cancelled"),
			duration:  ob.m.jobRunDurations.WithLabelValues(ob.service, o.Name),
		}
	})
}

// endJob counts a job run's end by how the job ended, and times the runs
// that ran the handler; a run that will run again is not an end.
func (ob *observer) endJob(o *telemetry.Outcome) {
	s := ob.job(o)
	var end prometheus.Counter
	switch o.Result {
	case telemetry.Handled:
		end = s.succeeded
		if o.Code == jobCancelledCode {
			end = s.cancelled
		}
	case telemetry.DeadLettered, telemetry.DeadLetterFailed:
		end = s.failed
	case telemetry.Retried:
	default:
		return // skipped (cancelled before it ran, finished before) or handed back: no run
	}
	if end != nil {
		end.Inc()
	}
	s.duration.Observe(o.Duration.Seconds()) // exemplars: on the delivery series of the same run
}

// jobCancelledCode is the problem code of a job run that ended cancelled.
const jobCancelledCode = "cancelled"
