package ferry_test

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
	"github.com/ferrygo/ferry/internal/naming"
)

// The job worker child: the test binary, re-executed with
// FERRY_TEST_JOB_WORKER_OUT set, runs FERRY_TEST_JOB_HOSTS hosts (each its
// own connection to the broker at FERRY_NATS_URL, each a worker of
// crashJob with FERRY_TEST_JOB_CONCURRENCY slots) until SIGTERM or SIGKILL.
// Each run of the handler appends "start <id>" to the file out when it
// begins and "done <id>" when its effect is made, before the job's record
// and message are settled. With FERRY_TEST_JOB_HANG=1 the handler never
// finishes on its own: it waits for its context to end.

// CrashJobInput is the test job's input: which job (for the log) and how
// long its handler works.
type CrashJobInput struct {
	N       int `json:"n"`
	SleepMS int `json:"sleep_ms,omitempty" minimum:"0"`
}

// CrashJobOutput is the test job's output.
type CrashJobOutput struct {
	N int `json:"n"`
}

var crashJob = ferry.Job[CrashJobInput, CrashJobOutput]{Name: "crashwork", Description: "Work for the crash tests."}

// crashJobAckWait is the workers' ack wait: a killed worker's jobs run
// again after it.
const crashJobAckWait = 2 * time.Second

// runJobWorkerChild runs the job worker child; see above. It writes
// "ready" on stdout once every host has started, and exits 0 after a clean
// shutdown.
func runJobWorkerChild(out string) int {
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer f.Close()
	var mu sync.Mutex
	note := func(what, id string) error {
		mu.Lock()
		defer mu.Unlock()
		_, err := fmt.Fprintf(f, "%s %s\n", what, id)
		return err
	}
	hang := os.Getenv("FERRY_TEST_JOB_HANG") == "1"
	hosts, _ := strconv.Atoi(os.Getenv("FERRY_TEST_JOB_HOSTS"))
	concurrency, _ := strconv.Atoi(os.Getenv("FERRY_TEST_JOB_CONCURRENCY"))
	cfg, err := ferry.LoadConfig(flag.NewFlagSet("jobworker", flag.ContinueOnError), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	handler := func(ctx context.Context, in *CrashJobInput, _ *ferry.Progress) (*CrashJobOutput, error) {
		id := ferry.JobFromContext(ctx)
		if err := note("start", id); err != nil {
			return nil, err
		}
		if hang {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		if in.SleepMS > 0 {
			select {
			case <-time.After(time.Duration(in.SleepMS) * time.Millisecond):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if err := note("done", id); err != nil {
			return nil, err
		}
		return &CrashJobOutput{N: in.N}, nil
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	var started []*ferry.Host
	for range max(hosts, 1) {
		svc := ferry.MustNew("crashworker", "1.0.0", ferry.WithoutHTTP())
		ferry.HandleJob(svc, crashJob, handler, ferry.JobConcurrency(max(concurrency, 1)), ferry.JobAckWait(crashJobAckWait),
			ferry.JobBackoff(10*time.Millisecond, 100*time.Millisecond), ferry.JobMaxAttempts(5))
		h, err := ferry.NewHost(ferry.WithConfig(cfg))
		if err == nil {
			err = h.Add(svc)
		}
		if err == nil {
			err = h.Start(ctx)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "job worker child:", err)
			return 2
		}
		started = append(started, h)
	}
	fmt.Println("ready")
	// What Host.Run does on SIGTERM, for every host at once.
	<-ctx.Done()
	stop()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	errs := make([]error, len(started))
	var wg sync.WaitGroup
	for i, h := range started {
		wg.Go(func() { errs[i] = h.Shutdown(sctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, "job worker child:", err)
		return 1
	}
	return 0
}

// jobChild is a running job worker child.
type jobChild struct {
	*testChild
	slots int // hosts × concurrency
}

// jobChildOptions are a job worker child's settings.
type jobChildOptions struct {
	hosts, concurrency int
	hang               bool
	grace              time.Duration
}

// startJobChild starts a job worker child on the broker at url, its runs
// logged in a new file of dir, and waits until it is ready.
func startJobChild(t *testing.T, url, dir string, o jobChildOptions) *jobChild {
	t.Helper()
	grace := o.grace
	if grace == 0 {
		grace = 10 * time.Second
	}
	hang := "0"
	if o.hang {
		hang = "1"
	}
	c := startTestChild(t, dir, "FERRY_TEST_JOB_WORKER_OUT", "FERRY_NATS_URL="+url, "FERRY_LOG_LEVEL=warn",
		"FERRY_SHUTDOWN_GRACE="+grace.String(), "FERRY_TEST_JOB_HANG="+hang,
		"FERRY_TEST_JOB_HOSTS="+strconv.Itoa(max(o.hosts, 1)), "FERRY_TEST_JOB_CONCURRENCY="+strconv.Itoa(max(o.concurrency, 1)))
	return &jobChild{testChild: c, slots: max(o.hosts, 1) * max(o.concurrency, 1)}
}

// testChild is the test binary re-executed as a child process that logs
// what it does to a file and says "ready" on stdout once it has started.
type testChild struct {
	cmd    *exec.Cmd
	out    string // its log
	exited chan struct{}
	err    error // the result of Wait, once exited is closed
}

// startTestChild starts a child with its log in a new file of dir, named
// by the environment variable outVar, and env (the child's settings are
// these alone, none of the test's FERRY_ variables), and waits until it
// is ready. The child is killed when the test ends.
func startTestChild(t *testing.T, dir, outVar string, env ...string) *testChild {
	t.Helper()
	f, err := os.CreateTemp(dir, "child-*.txt")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FERRY_") && !strings.HasPrefix(kv, "PORT=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(append(cmd.Env, outVar+"="+f.Name()), env...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &testChild{cmd: cmd, out: f.Name(), exited: make(chan struct{})}
	t.Cleanup(c.kill)
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- strings.TrimSpace(line)
		c.err = cmd.Wait()
		close(c.exited)
	}()
	select {
	case line := <-ready:
		if line != "ready" {
			t.Fatalf("the child process (%s) did not start (%q)", outVar, line)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the child process (%s) did not start within 30s", outVar)
	}
	return c
}

// kill ends the child with SIGKILL (no drain, no acks) and waits for it.
func (c *testChild) kill() {
	_ = c.cmd.Process.Kill() // fails once the process has exited
	<-c.exited
}

// terminate sends SIGTERM and waits, at most bound, for the process to
// end; it returns the process's result.
func (c *testChild) terminate(t *testing.T, bound time.Duration) error {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.exited:
		return c.err
	case <-time.After(bound):
		c.kill()
		t.Fatalf("the job worker child did not exit within %v of SIGTERM", bound)
		return nil
	}
}

// jobRuns is what job worker children logged: per job ID, how many runs
// started and how many made their effect.
type jobRuns struct {
	started, done map[string]int
}

func (r jobRuns) doneOnce() int { return len(r.done) }

// readJobRuns reads the logs of the children given.
func readJobRuns(t *testing.T, children ...*jobChild) jobRuns {
	t.Helper()
	r := jobRuns{started: map[string]int{}, done: map[string]int{}}
	for _, c := range children {
		f, err := os.Open(c.out)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			what, id, ok := strings.Cut(sc.Text(), " ")
			switch {
			case !ok: // a line cut by SIGKILL
			case what == "start":
				r.started[id]++
			case what == "done":
				r.done[id]++
			}
		}
		f.Close()
	}
	return r
}

// waitFor polls cond until it holds, failing the test after limit.
func waitFor(t *testing.T, limit time.Duration, cond func() bool, what string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", limit, fmt.Sprintf(what, args...))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startJobBroker starts the test's broker, listening for the children,
// and returns the host and its URL.
func startJobBroker(t *testing.T) (*ferrytest.Host, string) {
	t.Helper()
	cfg := ferrytest.Config(t)
	cfg.NATSListen = "127.0.0.1:0"
	h := ferrytest.StartWith(t, cfg, ferry.MustNew("driver", "1.0.0", ferry.WithoutHTTP(), quiet))
	return h, h.BrokerURL()
}

// getCrashJob reads a job's record.
func getCrashJob(t *testing.T, c *ferry.Client, id string) *ferry.JobRecord[CrashJobOutput] {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec, err := crashJob.Get(ctx, c, id)
	if err != nil {
		t.Fatalf("get job %s: %v", id, err)
	}
	return rec
}

// waitJobsSucceeded waits, at most limit, until every job's record says
// succeeded, and returns the records; a job that ends otherwise fails the
// test at once.
func waitJobsSucceeded(t *testing.T, c *ferry.Client, ids []string, limit time.Duration) map[string]*ferry.JobRecord[CrashJobOutput] {
	t.Helper()
	recs := make(map[string]*ferry.JobRecord[CrashJobOutput], len(ids))
	deadline := time.Now().Add(limit)
	for _, id := range ids {
		for {
			rec := getCrashJob(t, c, id)
			if rec.State.Final() {
				if rec.State != ferry.JobSucceeded {
					t.Fatalf("job %s ended %s: %+v", id, rec.State, rec)
				}
				recs[id] = rec
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("job %s not finished after %v: %+v", id, limit, rec)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return recs
}

// enqueueCrashJobs enqueues n jobs (8 at a time) and returns their IDs.
func enqueueCrashJobs(t *testing.T, c *ferry.Client, n, sleepMS int, opts ...ferry.EnqueueOption) []string {
	t.Helper()
	ids := make([]string, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(8, n) {
		wg.Go(func() {
			for i := range next {
				id, err := crashJob.Enqueue(context.Background(), c, &CrashJobInput{N: i, SleepMS: sleepMS}, opts...)
				if err != nil {
					errs <- err
					continue
				}
				ids[i] = id
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("enqueue: %v", err)
	}
	return ids
}

func skipIfShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs job worker child processes")
	}
}

// TestJobWorkerKilledRunsAgain: a worker process killed with SIGKILL while
// it runs a job leaves the job to another worker process after the ack
// wait; the job ends succeeded, its record counting two attempts.
func TestJobWorkerKilledRunsAgain(t *testing.T) {
	skipIfShort(t)
	h, url := startJobBroker(t)
	dir := t.TempDir()
	first := startJobChild(t, url, dir, jobChildOptions{hang: true})
	ids := enqueueCrashJobs(t, h.Client, 1, 0)
	id := ids[0]
	waitFor(t, 20*time.Second, func() bool { return readJobRuns(t, first).started[id] == 1 }, "the first worker starts the job")
	if rec := getCrashJob(t, h.Client, id); rec.State != ferry.JobRunning || rec.Attempts != 1 {
		t.Fatalf("record while the first worker runs the job: %+v", rec)
	}
	first.kill()

	second := startJobChild(t, url, dir, jobChildOptions{})
	rec := waitJobsSucceeded(t, h.Client, ids, 20*time.Second)[id]
	if rec.Attempts != 2 {
		t.Errorf("record %+v: want 2 attempts (the killed run and the one that succeeded)", rec)
	}
	if runs := readJobRuns(t, second); runs.started[id] != 1 || runs.done[id] != 1 {
		t.Errorf("the second worker ran the job %d times (effect %d); want once", runs.started[id], runs.done[id])
	}
}

// TestJobWorkerTerminated: a worker process stopped with SIGTERM finishes
// the jobs it runs within the grace period, and exits 0; those it has not
// taken stay queued for the next worker. A worker whose jobs outlast the
// grace period hands them back without spending an attempt: none is lost
// or left running, and each ends succeeded after one counted attempt.
func TestJobWorkerTerminated(t *testing.T) {
	skipIfShort(t)
	t.Run("finishes within the grace period", func(t *testing.T) {
		h, url := startJobBroker(t)
		dir := t.TempDir()
		first := startJobChild(t, url, dir, jobChildOptions{concurrency: 2})
		ids := enqueueCrashJobs(t, h.Client, 4, 1000)
		waitFor(t, 20*time.Second, func() bool { return len(readJobRuns(t, first).started) == 2 }, "the worker starts two jobs")
		if err := first.terminate(t, 20*time.Second); err != nil {
			t.Fatalf("the worker exited with %v after SIGTERM; want status 0", err)
		}
		ran := readJobRuns(t, first)
		if len(ran.started) < 2 || len(ran.done) != len(ran.started) {
			t.Fatalf("after SIGTERM the worker had started %d jobs and finished %d; want every job it started finished", len(ran.started), len(ran.done))
		}
		for _, id := range ids {
			rec := getCrashJob(t, h.Client, id)
			switch {
			case ran.done[id] == 1 && (rec.State != ferry.JobSucceeded || rec.Attempts != 1):
				t.Errorf("job finished during the shutdown: %+v; want succeeded after 1 attempt", rec)
			case ran.done[id] == 0 && (rec.State != ferry.JobQueued || rec.Attempts != 0):
				t.Errorf("job not started before the shutdown: %+v; want queued, 0 attempts", rec)
			}
		}
		second := startJobChild(t, url, dir, jobChildOptions{concurrency: 2})
		recs := waitJobsSucceeded(t, h.Client, ids, 20*time.Second)
		all := readJobRuns(t, first, second)
		for _, id := range ids {
			if all.done[id] != 1 || recs[id].Attempts != 1 {
				t.Errorf("job %s: effect made %d times, record %+v; want once, 1 attempt", id, all.done[id], recs[id])
			}
		}
	})
	t.Run("hands back what outlasts the grace period", func(t *testing.T) {
		h, url := startJobBroker(t)
		dir := t.TempDir()
		first := startJobChild(t, url, dir, jobChildOptions{concurrency: 2, hang: true, grace: 2 * time.Second})
		ids := enqueueCrashJobs(t, h.Client, 3, 0)
		waitFor(t, 20*time.Second, func() bool { return len(readJobRuns(t, first).started) == 2 }, "the worker starts two jobs")
		_ = first.terminate(t, 20*time.Second) // exits 1: the grace period ran out with handlers running
		for _, id := range ids {
			if rec := getCrashJob(t, h.Client, id); rec.State != ferry.JobQueued || rec.Attempts != 0 {
				t.Errorf("job after the hand-back: %+v; want queued, 0 attempts", rec)
			}
		}
		second := startJobChild(t, url, dir, jobChildOptions{concurrency: 2})
		recs := waitJobsSucceeded(t, h.Client, ids, 20*time.Second)
		runs := readJobRuns(t, second)
		for _, id := range ids {
			if runs.done[id] != 1 || recs[id].Attempts != 1 {
				t.Errorf("job %s: effect made %d times, record %+v; want once, 1 attempt (a hand-back is free)", id, runs.done[id], recs[id])
			}
		}
	})
}

// TestJobWorkersKilledUnderLoad runs 2,000 jobs (10,000 with
// FERRY_LONG_TESTS=1) on 4 workers in 2 processes, kills one process with
// SIGKILL at a random point of the run and starts it again: every job ends
// succeeded, and its effect is made once by job ID — a second time only
// for a job the killed process was running, which its restart or the
// other process ran again.
func TestJobWorkersKilledUnderLoad(t *testing.T) {
	skipIfShort(t)
	n := 2000
	if os.Getenv("FERRY_LONG_TESTS") == "1" {
		n = 10000
	}
	h, url := startJobBroker(t)
	dir := t.TempDir()
	o := jobChildOptions{hosts: 2, concurrency: 8}
	// Every job is stored before the workers start, so the kill lands
	// within the run however fast the workers are beside the enqueuer.
	ids := enqueueCrashJobs(t, h.Client, n, 3)
	children := []*jobChild{startJobChild(t, url, dir, o), startJobChild(t, url, dir, o)}

	victim := rand.IntN(2)
	killAt := n/5 + rand.IntN(n*3/10) // between a fifth and a half of the run
	waitFor(t, time.Minute, func() bool { return readJobRuns(t, children...).doneOnce() >= killAt }, "%d jobs are done", killAt)
	killed := children[victim]
	killed.kill()
	atKill := readJobRuns(t, children...).doneOnce()
	if atKill == n {
		t.Fatal("the kill came after the last job; nothing was tested")
	}
	restarted := startJobChild(t, url, dir, o)
	children = append(children, restarted)
	waitFor(t, 2*time.Minute, func() bool { return readJobRuns(t, children...).doneOnce() == n }, "every job's effect is made")
	recs := waitJobsSucceeded(t, h.Client, ids, time.Minute)

	all, inKilled := readJobRuns(t, children...), readJobRuns(t, killed)
	twice, retried := 0, 0
	for _, id := range ids {
		switch {
		case all.done[id] == 0:
			t.Errorf("job %s: no effect", id)
		case all.done[id] > 2, all.done[id] == 2 && inKilled.started[id] == 0:
			t.Errorf("job %s: effect made %d times, %d of them by the killed process", id, all.done[id], inKilled.done[id])
		case all.done[id] == 2:
			twice++
		}
		switch rec := recs[id]; {
		case rec.Attempts == 2:
			retried++
		case rec.Attempts != 1:
			t.Errorf("job %s: %d attempts; want 1, or 2 if the killed process held it", id, rec.Attempts)
		}
	}
	// The killed process held at most one job per slot.
	if twice > killed.slots || retried > killed.slots {
		t.Errorf("%d effects made twice and %d jobs run twice; the killed process held at most %d", twice, retried, killed.slots)
	}
	t.Logf("%d jobs; process %d killed after %d were done; %d made their effect twice, %d had a second attempt",
		n, victim, atKill, twice, retried)
}

// TestJobScheduledWhileWorkersDown: jobs scheduled with EnqueueAt and
// EnqueueDelay come due while every worker process has been killed; a
// worker started later runs each of them once.
func TestJobScheduledWhileWorkersDown(t *testing.T) {
	skipIfShort(t)
	h, url := startJobBroker(t)
	dir := t.TempDir()
	o := jobChildOptions{concurrency: 4}
	workers := []*jobChild{startJobChild(t, url, dir, o), startJobChild(t, url, dir, o)}
	delayed := enqueueCrashJobs(t, h.Client, 5, 0, ferry.EnqueueDelay(2*time.Second))
	at := enqueueCrashJobs(t, h.Client, 5, 0, ferry.EnqueueAt(time.Now().Add(3*time.Second)))
	ids := append(delayed, at...)
	for _, id := range ids {
		if rec := getCrashJob(t, h.Client, id); rec.State != ferry.JobScheduled {
			t.Fatalf("job %s: %+v; want scheduled", id, rec)
		}
	}
	for _, w := range workers {
		w.kill()
	}
	// Every job comes due, and waits in the queue for a worker.
	js, err := jetstream.New(h.NATS())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cons, err := js.Consumer(ctx, naming.JobStream(crashJob.Name), naming.JobConsumer)
		if err != nil {
			return false
		}
		info, err := cons.Info(ctx)
		return err == nil && info.NumPending+uint64(info.NumAckPending) == uint64(len(ids))
	}, "the %d scheduled jobs come due", len(ids))
	if runs := readJobRuns(t, workers...); len(runs.started) != 0 {
		t.Fatalf("%d jobs ran before their time", len(runs.started))
	}

	later := startJobChild(t, url, dir, o)
	recs := waitJobsSucceeded(t, h.Client, ids, 30*time.Second)
	runs := readJobRuns(t, append(workers, later)...)
	for _, id := range ids {
		if runs.started[id] != 1 || runs.done[id] != 1 || recs[id].Attempts != 1 {
			t.Errorf("job %s: run %d times (effect %d), record %+v; want once", id, runs.started[id], runs.done[id], recs[id])
		}
	}
}

// TestJobCancelRacesCompletion cancels 200 jobs at random points around
// their start and their completion: each record ends either cancelled or
// succeeded, never both nor anything else; a job that ends cancelled while
// its handler ran had that handler's context cancelled, and a job whose
// handler returned its result ends succeeded.
func TestJobCancelRacesCompletion(t *testing.T) {
	const rounds = 200
	type run struct {
		started             chan struct{} // closed when the handler starts
		ran                 bool
		sawCancel, returned bool
	}
	var mu sync.Mutex
	runs := map[string]*run{}
	runOf := func(id string) *run { // under mu
		if runs[id] == nil {
			runs[id] = &run{started: make(chan struct{})}
		}
		return runs[id]
	}
	svc := ferry.MustNew("crashworker", "1.0.0", ferry.WithoutHTTP(), quiet)
	ferry.HandleJob(svc, crashJob, func(ctx context.Context, in *CrashJobInput, _ *ferry.Progress) (*CrashJobOutput, error) {
		id := ferry.JobFromContext(ctx)
		mu.Lock()
		r := runOf(id)
		if r.ran {
			mu.Unlock()
			return nil, fmt.Errorf("job %s ran twice", id)
		}
		r.ran = true
		close(r.started)
		mu.Unlock()
		select {
		case <-time.After(time.Duration(in.SleepMS) * time.Millisecond):
			mu.Lock()
			r.returned = true
			mu.Unlock()
			return &CrashJobOutput{N: in.N}, nil
		case <-ctx.Done():
			mu.Lock()
			r.sawCancel = true
			mu.Unlock()
			return nil, ctx.Err()
		}
	}, ferry.JobConcurrency(32), ferry.JobMaxAttempts(1))
	h := ferrytest.Start(t, svc)
	ctx := context.Background()

	ids := make([]string, rounds)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range rounds {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			work := rand.IntN(10) // ms
			id, err := crashJob.Enqueue(ctx, h.Client, &CrashJobInput{N: i, SleepMS: work})
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = id
			if i%4 != 0 {
				// Three in four race the handler's end: the cancel comes
				// after its start, within about its running time.
				mu.Lock()
				started := runOf(id).started
				mu.Unlock()
				select {
				case <-started:
				case <-time.After(10 * time.Second):
					t.Errorf("job %s did not start", id)
					return
				}
			}
			time.Sleep(time.Duration(rand.IntN(1000*work+500)) * time.Microsecond)
			if _, err := crashJob.Cancel(ctx, h.Client, id); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	var cancelled, succeeded, beforeStart, whileRunning int
	for _, id := range ids {
		var rec *ferry.JobRecord[CrashJobOutput]
		ferrytest.Eventually(t, func() bool {
			rec = getCrashJob(t, h.Client, id)
			return rec.State.Final()
		}, "job %s ends", id)
		mu.Lock()
		r := runOf(id)
		ran, sawCancel, returned := r.ran, r.sawCancel, r.returned
		mu.Unlock()
		switch {
		case rec.State == ferry.JobSucceeded && returned && rec.Result != nil:
			succeeded++
		case rec.State == ferry.JobCancelled && !ran && rec.Attempts == 0:
			cancelled++
			beforeStart++
		case rec.State == ferry.JobCancelled && sawCancel:
			cancelled++
			whileRunning++
		default:
			t.Errorf("job %s: record %+v; handler ran %v, saw its context cancelled %v, returned its result %v",
				id, rec, ran, sawCancel, returned)
		}
		if rec.CancelRequested {
			t.Errorf("job %s: finished with cancel_requested still set: %+v", id, rec)
		}
	}
	t.Logf("%d rounds: %d succeeded, %d cancelled (%d before they started, %d while running)", rounds, succeeded, cancelled, beforeStart, whileRunning)
}
