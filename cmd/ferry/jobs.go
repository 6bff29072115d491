package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferrygo/ferry"
)

// jobsCommand builds `ferry jobs` or, with runs, `ferry runs`: the same
// operations on jobs and on workflow runs (a run is a job of its
// workflow's kind).
func (a *app) jobsCommand(runs bool) *cobra.Command {
	noun, kind := "job", "job kind"
	if runs {
		noun, kind = "workflow run", "workflow"
	}
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List, show, cancel, retry and watch " + noun + "s",
	}
	if runs {
		cmd.Use = "runs"
	}

	var filter ferry.JobFilter
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List " + noun + "s by " + kind + " and state (--after CURSOR for the next page)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, c, cancel, err := a.request(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			// Jobs and runs share the listing: pages are read until one
			// holds what this command lists, or the end.
			var kept []*ferry.JobRecord[json.RawMessage]
			next := filter.After
			for range maxListPages {
				f := filter
				f.After = next
				recs, after, err := ferry.ListJobs(ctx, c, f, limit-len(kept))
				if err != nil {
					return a.fail(err)
				}
				for _, r := range recs {
					if r.Workflow == runs {
						kept = append(kept, r)
					}
				}
				next = after
				if next == "" || len(kept) >= limit {
					break
				}
			}
			if a.json {
				return a.printJSON(map[string]any{cmd.Parent().Name(): kept, "next": next})
			}
			if len(kept) == 0 {
				fmt.Fprintf(a.stdout, "no %ss\n", noun)
			} else {
				rows := make([][]string, 0, len(kept))
				for _, r := range kept {
					rows = append(rows, []string{r.ID, r.Job, string(r.State), strconv.Itoa(r.Attempts), progressText(r), since(r.UpdatedAt), r.LastError})
				}
				a.table([]string{"ID", kindHeader(runs), "STATE", "ATTEMPTS", "PROGRESS", "UPDATED", "LAST ERROR"}, rows)
			}
			if next != "" {
				fmt.Fprintf(a.stdout, "more: ferry %s list%s --after %s\n", cmd.Parent().Name(), flagsOf(cmd, "job", "state", "limit"), next)
			}
			return nil
		},
	}
	list.Flags().StringVar(&filter.Job, "job", "", "only this "+kind+"'s")
	list.Flags().StringVar((*string)(&filter.State), "state", "", "only those in this state: queued, scheduled, running, succeeded, failed, cancelled")
	list.Flags().StringVar(&filter.After, "after", "", "the cursor a previous page printed")
	list.Flags().IntVar(&limit, "limit", 50, "list at most this many")

	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show a " + noun + "'s record" + map[bool]string{true: " and its steps", false: ""}[runs],
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, cancel, err := a.request(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			rec, err := ferry.GetJob(ctx, c, args[0])
			if err != nil {
				return a.fail(err)
			}
			var steps []ferry.WorkflowStep
			if rec.Workflow {
				if steps, err = ferry.GetRunSteps(ctx, c, rec.ID); err != nil {
					return a.fail(err)
				}
			}
			if a.json {
				if rec.Workflow {
					return a.printJSON(map[string]any{"run": rec, "steps": steps})
				}
				return a.printJSON(rec)
			}
			a.printRecord(rec)
			a.printSteps(steps, 0)
			return nil
		},
	}

	act := func(use, short string, do func(*cobra.Command, *ferry.Client, string) (*ferry.JobRecord[json.RawMessage], error), said string) *cobra.Command {
		return &cobra.Command{
			Use:   use + " ID",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := a.connect(cmd.Context())
				if err != nil {
					return err
				}
				rec, err := do(cmd, c, args[0])
				if err != nil {
					return a.fail(err)
				}
				if a.json {
					return a.printJSON(rec)
				}
				fmt.Fprintf(a.stdout, "%s %s %s\n", noun, rec.ID, said)
				if rec.CancelRequested && rec.State == ferry.JobRunning {
					fmt.Fprintln(a.stdout, "it is running: its handler's context is cancelled; it ends cancelled, or succeeded if it finishes anyway")
				}
				return nil
			},
		}
	}
	cancelCmd := act("cancel", "Cancel a "+noun+": at once when it waits, through its context when it runs",
		func(cmd *cobra.Command, c *ferry.Client, id string) (*ferry.JobRecord[json.RawMessage], error) {
			ctx, cancel := a.requestContext(cmd.Context())
			defer cancel()
			return ferry.CancelJob(ctx, c, id)
		}, "cancelled")
	retryShort := "Run a failed job again from its dead letter (its attempts start afresh)"
	if runs {
		retryShort = "Resume a failed run from its last completed step"
	}
	retry := act("retry", retryShort,
		func(cmd *cobra.Command, c *ferry.Client, id string) (*ferry.JobRecord[json.RawMessage], error) {
			ctx, cancel := a.requestContext(cmd.Context())
			defer cancel()
			return ferry.RetryJob(ctx, c, id)
		}, "runs again")

	var interval time.Duration
	watch := &cobra.Command{
		Use:   "watch ID",
		Short: "Follow a " + noun + " live until it ends; the exit code is 1 unless it succeeded",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			return a.watch(cmd, c, args[0], interval)
		},
	}
	watch.Flags().DurationVar(&interval, "interval", 500*time.Millisecond, "how often to look")

	cmd.AddCommand(list, show, cancelCmd, retry, watch)
	return cmd
}

// maxListPages bounds the pages one listing reads to fill its page.
const maxListPages = 20

// flagsOf repeats the named flags the command line set, for a "more:"
// line that lists the next page of the same listing.
func flagsOf(cmd *cobra.Command, names ...string) string {
	out := ""
	for _, name := range names {
		if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
			out += " --" + name + " " + f.Value.String()
		}
	}
	return out
}

func kindHeader(runs bool) string {
	if runs {
		return "WORKFLOW"
	}
	return "JOB"
}

// watch prints a job's or run's changes until it ends.
func (a *app) watch(cmd *cobra.Command, c *ferry.Client, id string, interval time.Duration) error {
	ctx := cmd.Context()
	var last string
	stepsSeen := 0
	ticker := time.NewTicker(max(interval, 50*time.Millisecond))
	defer ticker.Stop()
	for {
		rctx, cancel := a.requestContext(ctx)
		rec, err := ferry.GetJob(rctx, c, id)
		var steps []ferry.WorkflowStep
		if err == nil && rec.Workflow {
			steps, err = ferry.GetRunSteps(rctx, c, id)
		}
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if fe := problemOf(err); fe != nil && fe.Status < 500 {
				return a.fail(err)
			}
			fmt.Fprintf(a.stderr, "ferry: %s; trying again\n", oneLine(err)) // a broker hiccup: keep watching
		} else {
			if a.json {
				line := watchLine(rec, steps[min(stepsSeen, len(steps)):])
				if line != last {
					fmt.Fprintln(a.stdout, line)
				}
				last, stepsSeen = line, max(stepsSeen, len(steps))
			} else {
				a.printSteps(steps, stepsSeen)
				stepsSeen = max(stepsSeen, len(steps))
				line := fmt.Sprintf("%s  %-9s attempt %d%s", time.Now().Format("15:04:05"), rec.State, rec.Attempts, suffix(progressText(rec), rec.Waiting, rec.LastError))
				if line[10:] != last {
					fmt.Fprintln(a.stdout, line)
					last = line[10:]
				}
			}
			if rec.State.Final() {
				if rec.State != ferry.JobSucceeded {
					return errReported
				}
				if !a.json && rec.Result != nil {
					return a.printBody(*rec.Result)
				}
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// watchLine is one JSON line of watch --json: the record and new steps.
func watchLine(rec *ferry.JobRecord[json.RawMessage], steps []ferry.WorkflowStep) string {
	rec2 := *rec
	rec2.UpdatedAt = time.Time{} // a line per change, not per write
	data, _ := json.Marshal(map[string]any{"record": rec2, "new_steps": steps})
	return string(data)
}

func suffix(parts ...string) string {
	out := ""
	for _, p := range parts {
		if p != "" {
			out += "  " + p
		}
	}
	return out
}

// progressText formats a record's progress: "40% rendering page 2".
func progressText(r *ferry.JobRecord[json.RawMessage]) string {
	if r.Progress == nil {
		if r.Waiting != "" {
			return "waiting: " + r.Waiting
		}
		return ""
	}
	s := strconv.FormatFloat(r.Progress.Percent, 'f', 0, 64) + "%"
	if r.Progress.Message != "" {
		s += " " + r.Progress.Message
	}
	return s
}

// printRecord prints a job's record as lines of fields.
func (a *app) printRecord(r *ferry.JobRecord[json.RawMessage]) {
	what := "job"
	if r.Workflow {
		what = "workflow run"
	}
	fmt.Fprintf(a.stdout, "%s %s (%s): %s\n", what, r.ID, r.Job, r.State)
	field := func(name, value string) {
		if value != "" {
			fmt.Fprintf(a.stdout, "  %-12s %s\n", name+":", value)
		}
	}
	field("attempts", fmt.Sprintf("%d of %s", r.Attempts, map[bool]string{true: strconv.Itoa(r.MaxAttempts), false: "the worker's limit"}[r.MaxAttempts > 0]))
	field("priority", string(r.Priority))
	field("progress", progressText(r))
	field("waiting", r.Waiting)
	field("last error", r.LastError)
	field("schedule", r.Schedule)
	field("enqueued", stamp(r.EnqueuedAt))
	field("run at", stamp(r.RunAt))
	field("started", stamp(r.StartedAt))
	field("finished", stamp(r.FinishedAt))
	if r.CancelRequested {
		field("cancel", "requested")
	}
	if r.Result != nil {
		fmt.Fprintln(a.stdout, "  result:")
		a.printBody(*r.Result) //nolint:errcheck // stdout
	}
}

// printSteps prints a run's steps from the index from on.
func (a *app) printSteps(steps []ferry.WorkflowStep, from int) {
	if from == 0 && len(steps) > 0 {
		fmt.Fprintln(a.stdout, "  steps:")
	}
	for i := from; i < len(steps); i++ {
		st := steps[i]
		name := st.Name
		if st.Compensation {
			name = "⟲ " + name
		}
		outcome := "done"
		if st.Error != "" {
			outcome = "failed: " + st.Error
		}
		fmt.Fprintf(a.stdout, "  %2d. %-24s %s (attempts %d) %s\n", i+1, name, outcome, max(1, st.Attempts), stamp(st.At))
	}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("2006-01-02 15:04:05.000")
}
