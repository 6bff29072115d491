package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ferrygo/ferry"
)

func (a *app) dlqCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List, show, replay, delete and purge dead letters",
		Long: `dlq works on the dead letters: events (and failed jobs) a subscription gave
up on, stored in the stream ferry-deadletters with their error. A replay
delivers a dead letter again to the consumer that gave up on it only (a
failed job runs again), and removes it from the dead letters.`,
	}
	var filter ferry.DeadLetterFilter
	addFilter := func(c *cobra.Command) {
		c.Flags().StringVar(&filter.Topic, "topic", "", "only this topic's (a job's name for failed jobs)")
		c.Flags().StringVar(&filter.Service, "service", "", "only this service's")
		c.Flags().StringVar(&filter.Consumer, "consumer", "", "only this consumer's (~job for failed jobs)")
	}
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List dead letters, oldest first (--after SEQ for the next page)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, c, cancel, err := a.request(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			dls, err := ferry.ListDeadLetters(ctx, c, filter, limit)
			if err != nil {
				return a.fail(err)
			}
			if a.json {
				return a.printJSON(deadLetterViews(dls))
			}
			if len(dls) == 0 {
				fmt.Fprintln(a.stdout, "no dead letters")
				return nil
			}
			rows := make([][]string, 0, len(dls))
			for _, dl := range dls {
				rows = append(rows, []string{strconv.FormatUint(dl.Sequence, 10), dl.Topic, dl.Service, dl.Consumer,
					strconv.FormatUint(dl.Deliveries, 10), since(dl.Time), dl.Error})
			}
			a.table([]string{"SEQ", "TOPIC", "SERVICE", "CONSUMER", "DELIVERIES", "WHEN", "ERROR"}, rows)
			if len(dls) == limit {
				fmt.Fprintf(a.stdout, "more: ferry dlq list%s --after %d\n", flagsOf(cmd, "topic", "service", "consumer", "limit"), dls[len(dls)-1].Sequence)
			}
			return nil
		},
	}
	addFilter(list)
	list.Flags().Uint64Var(&filter.After, "after", 0, "list those after this sequence")
	list.Flags().IntVar(&limit, "limit", 50, "list at most this many")

	show := &cobra.Command{
		Use:   "show SEQ",
		Short: "Show one dead letter: where it failed, why, its headers and payload",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			seq, err := parseSeq(args[0])
			if err != nil {
				return err
			}
			ctx, c, cancel, err := a.request(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			dl, err := ferry.GetDeadLetter(ctx, c, seq)
			if err != nil {
				return a.fail(err)
			}
			view := deadLetterViews([]ferry.DeadLetter{*dl})[0]
			if a.json {
				return a.printJSON(view)
			}
			fmt.Fprintf(a.stdout, "dead letter %d, %s\n", dl.Sequence, dl.Time.Local().Format(time.RFC3339))
			fmt.Fprintf(a.stdout, "  topic %s, service %s, consumer %s; %d deliveries\n", dl.Topic, dl.Service, dl.Consumer, dl.Deliveries)
			fmt.Fprintf(a.stdout, "  from %s #%d (%s), id %s\n", dl.Stream, dl.StreamSequence, dl.Subject, dl.MessageID)
			fmt.Fprintf(a.stdout, "  error: %s\n", dl.Error)
			for k, vs := range dl.Header {
				fmt.Fprintf(a.stdout, "  %s: %s\n", k, strings.Join(vs, ", "))
			}
			return a.printBody(dl.Data)
		},
	}

	var all bool
	replay := &cobra.Command{
		Use:   "replay [SEQ...]",
		Short: "Replay dead letters: the sequences given, or every one the filter selects",
		Long: `replay delivers dead letters again, each to the consumer that gave up on it
only, and removes them from the dead letters. Without sequences it replays
every dead letter the filter selects (--all: every one), with a progress
bar on a terminal and a count at the end.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.bulk(cmd, args, filter, all, "replay", "replayed",
				func(c *ferry.Client, seq uint64) error {
					ctx, cancel := a.requestContext(cmd.Context())
					defer cancel()
					_, err := ferry.ReplayDeadLetter(ctx, c, seq)
					return err
				},
				func(c *ferry.Client, progress func(done, total int)) (int, error) {
					return ferry.ReplayDeadLetters(cmd.Context(), c, filter, progress)
				})
		},
	}
	addFilter(replay)
	replay.Flags().BoolVar(&all, "all", false, "replay every dead letter (when no sequence and no filter is given)")

	del := &cobra.Command{
		Use:     "purge [SEQ...]",
		Aliases: []string{"delete"},
		Short:   "Delete dead letters for good: the sequences given, or every one the filter selects",
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.bulk(cmd, args, filter, all, "purge", "deleted",
				func(c *ferry.Client, seq uint64) error {
					ctx, cancel := a.requestContext(cmd.Context())
					defer cancel()
					return ferry.DeleteDeadLetter(ctx, c, seq)
				},
				func(c *ferry.Client, _ func(done, total int)) (int, error) {
					return ferry.PurgeDeadLetters(cmd.Context(), c, filter)
				})
		},
	}
	addFilter(del)
	del.Flags().BoolVar(&all, "all", false, "delete every dead letter (when no sequence and no filter is given)")

	cmd.AddCommand(list, show, replay, del)
	return cmd
}

// bulk runs a dead-letter operation on the sequences given, or on what
// the filter selects, reporting progress and the count.
func (a *app) bulk(cmd *cobra.Command, args []string, filter ferry.DeadLetterFilter, all bool, verb, done string,
	one func(*ferry.Client, uint64) error, many func(*ferry.Client, func(done, total int)) (int, error)) error {
	seqs := make([]uint64, 0, len(args))
	for _, arg := range args {
		seq, err := parseSeq(arg)
		if err != nil {
			return err
		}
		seqs = append(seqs, seq)
	}
	noFilter := filter == (ferry.DeadLetterFilter{})
	switch {
	case len(seqs) > 0 && !noFilter:
		return usagef("%s: give sequences or a filter, not both", verb)
	case len(seqs) == 0 && noFilter && !all:
		return usagef("%s: give sequences, a filter (--topic, --service, --consumer) or --all", verb)
	}
	c, err := a.connect(cmd.Context())
	if err != nil {
		return err
	}
	var n int
	if len(seqs) > 0 {
		for _, seq := range seqs {
			if err := one(c, seq); err != nil {
				a.report(verb, done, n)
				return a.fail(err)
			}
			n++
		}
	} else {
		bar := a.progressBar(verb)
		n, err = many(c, bar)
		a.endProgress()
		if err != nil {
			a.report(verb, done, n)
			fmt.Fprintln(a.stderr, sanitize(err.Error())) // a line per dead letter that failed
			return errReported
		}
	}
	a.report(verb, done, n)
	return nil
}

// report prints how many dead letters an operation handled.
func (a *app) report(verb, done string, n int) {
	if a.json {
		a.printJSON(map[string]int{done: n}) //nolint:errcheck // stdout
		return
	}
	fmt.Fprintf(a.stdout, "%s %d dead letter%s\n", done, n, plural(n))
}

// progressBar returns a progress callback drawing a bar on standard error
// when it is a terminal; nil otherwise.
func (a *app) progressBar(verb string) func(done, total int) {
	if f, ok := a.stderr.(*os.File); !ok || !isTerminal(f) || a.json {
		return nil
	}
	return func(done, total int) {
		const width = 30
		fill := width * done / max(total, 1)
		fmt.Fprintf(a.stderr, "\r%s [%s%s] %d/%d", verb, strings.Repeat("=", fill), strings.Repeat(" ", width-fill), done, total)
	}
}

// endProgress ends the progress bar's line.
func (a *app) endProgress() {
	if f, ok := a.stderr.(*os.File); ok && isTerminal(f) && !a.json {
		fmt.Fprint(a.stderr, "\r\033[K")
	}
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func parseSeq(s string) (uint64, error) {
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil || seq == 0 {
		return 0, usagef("%q is not a dead letter's sequence (a positive number)", s)
	}
	return seq, nil
}

// deadLetterView is a dead letter as --json prints it.
type deadLetterView struct {
	Sequence       uint64              `json:"sequence"`
	Topic          string              `json:"topic"`
	Service        string              `json:"service"`
	Consumer       string              `json:"consumer"`
	Error          string              `json:"error"`
	Deliveries     uint64              `json:"deliveries"`
	Stream         string              `json:"stream"`
	StreamSequence uint64              `json:"stream_sequence"`
	Subject        string              `json:"subject"`
	MessageID      string              `json:"message_id,omitempty"`
	Time           time.Time           `json:"time"`
	Header         map[string][]string `json:"header,omitempty"`
	Data           any                 `json:"data"`
}

func deadLetterViews(dls []ferry.DeadLetter) []deadLetterView {
	out := make([]deadLetterView, 0, len(dls))
	for _, dl := range dls {
		v := deadLetterView{Sequence: dl.Sequence, Topic: dl.Topic, Service: dl.Service, Consumer: dl.Consumer, Error: dl.Error,
			Deliveries: dl.Deliveries, Stream: dl.Stream, StreamSequence: dl.StreamSequence, Subject: dl.Subject,
			MessageID: dl.MessageID, Time: dl.Time, Header: dl.Header, Data: string(dl.Data)}
		if json.Valid(dl.Data) {
			v.Data = json.RawMessage(dl.Data)
		}
		out = append(out, v)
	}
	return out
}
