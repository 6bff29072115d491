package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/internal/naming"
)

func (a *app) publishCommand() *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "publish TOPIC [JSON | @FILE | -]",
		Short: "Publish an event on a topic and wait until JetStream stored it",
		Long: `publish publishes one event (JSON given as an argument, read from a file
with @FILE, or from standard input with -) on a topic that exists on the
broker, and prints its stream sequence once JetStream stored it. Retry a
failed publish with the same --id: an event already stored is not stored
twice.`,
		Example: `  ferry publish order-placed '{"order_id":"o-1","quantity":2}' --id o-1`,
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := []byte("{}")
			if len(args) == 2 {
				var err error
				if body, err = readBody(args[1], cmd.InOrStdin()); err != nil {
					return err
				}
			}
			ctx, c, cancel, err := a.request(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			ts, err := ferry.GetTopic(ctx, c, args[0])
			if err != nil {
				return a.fail(err)
			}
			topic := ferry.Topic[json.RawMessage]{Name: ts.Name, Subject: ts.Subject}
			var opts []ferry.PublishOption
			if id != "" {
				opts = append(opts, ferry.PublishMessageID(id))
			}
			event := json.RawMessage(body)
			res, err := topic.Publish(ctx, c, &event, opts...)
			if err != nil {
				return a.fail(err)
			}
			if a.json {
				return a.printJSON(map[string]any{"topic": ts.Name, "id": res.ID, "sequence": res.Sequence, "duplicate": res.Duplicate})
			}
			note := ""
			if res.Duplicate {
				note = " (a duplicate of an event already stored: not stored again)"
			}
			fmt.Fprintf(a.stdout, "published on %s: sequence %d, id %s%s\n", ts.Name, res.Sequence, res.ID, note)
			return nil
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "the event's message ID (de-duplicates a retried publish); default: a new one")
	return cmd
}

func (a *app) tailCommand() *cobra.Command {
	var from uint64
	var last, count int
	var all bool
	cmd := &cobra.Command{
		Use:   "tail TOPIC",
		Short: "Follow a topic's events without taking them from its subscribers",
		Long: `tail follows a topic's events as they are stored, through an ordered
consumer of its own that the broker removes when tail stops: subscribers
still get every event. By default it starts with the next event; --last N
starts N events back, --from SEQ at a sequence, --all at the first.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			rctx, cancel := a.requestContext(ctx)
			defer cancel()
			ts, err := ferry.GetTopic(rctx, c, args[0])
			if err != nil {
				return a.fail(err)
			}
			js, err := jetstream.New(c.Conn())
			if err != nil {
				return err
			}
			cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{ts.Subject}, DeliverPolicy: jetstream.DeliverNewPolicy}
			switch {
			case all:
				cfg.DeliverPolicy = jetstream.DeliverAllPolicy
			case from > 0:
				cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
			case last > 0:
				cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, max(1, ts.LastSequence-min(ts.LastSequence, uint64(last))+1)
			}
			cons, err := js.OrderedConsumer(rctx, naming.TopicStream(ts.Name), cfg)
			if err != nil {
				return fmt.Errorf("tail %s: %w", ts.Name, err)
			}
			if !a.json {
				fmt.Fprintf(a.stderr, "following %s (%s); Ctrl-C stops\n", ts.Name, ts.Subject)
			}
			for n := 0; count == 0 || n < count; {
				fctx, fcancel := context.WithTimeout(ctx, 5*time.Second)
				msg, err := cons.Next(jetstream.FetchContext(fctx))
				fcancel()
				switch {
				case ctx.Err() != nil:
					return nil
				case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages):
					continue
				case err != nil:
					return fmt.Errorf("tail %s: %w", ts.Name, err)
				}
				n++
				if err := a.printEvent(msg); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().Uint64Var(&from, "from", 0, "start at this stream sequence")
	cmd.Flags().IntVar(&last, "last", 0, "start this many events back")
	cmd.Flags().BoolVar(&all, "all", false, "start at the first event stored")
	cmd.Flags().IntVarP(&count, "count", "n", 0, "stop after this many events (0: follow until Ctrl-C)")
	return cmd
}

// tailedEvent is an event as tail prints it with --json (one per line).
type tailedEvent struct {
	Sequence uint64              `json:"sequence"`
	Time     time.Time           `json:"time"`
	Subject  string              `json:"subject"`
	ID       string              `json:"id,omitempty"`
	Source   string              `json:"source,omitempty"`
	Headers  map[string][]string `json:"headers,omitempty"`
	Data     json.RawMessage     `json:"data"`
}

func (a *app) printEvent(msg jetstream.Msg) error {
	md, err := msg.Metadata()
	if err != nil {
		return err
	}
	h := msg.Headers()
	ev := tailedEvent{Sequence: md.Sequence.Stream, Time: md.Timestamp, Subject: msg.Subject(), ID: h.Get(naming.HeaderMsgID),
		Source: h.Get(naming.HeaderSource), Headers: h, Data: msg.Data()}
	if !json.Valid(ev.Data) {
		quoted, _ := json.Marshal(string(ev.Data))
		ev.Data = quoted
	}
	if a.json {
		line, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(a.stdout, string(line))
		return err
	}
	from := ""
	if ev.Source != "" {
		from = " from " + ev.Source
	}
	fmt.Fprintf(a.stdout, "#%d %s %s%s id=%s\n", ev.Sequence, ev.Time.Local().Format("15:04:05.000"), ev.Subject, from, ev.ID)
	return a.printBody(ev.Data)
}
