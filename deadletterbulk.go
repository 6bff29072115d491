package ferry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry/internal/naming"
)

// GetDeadLetter returns the dead letter with sequence seq. One that does
// not exist is a 404 *[Error] ("dead_letter_not_found").
func GetDeadLetter(ctx context.Context, c *Client, seq uint64) (*DeadLetter, error) {
	stream, err := deadLetterStream(ctx, c, seq)
	if err != nil {
		return nil, err
	}
	raw, err := stream.GetMsg(ctx, seq)
	if err != nil {
		return nil, deadLetterError(seq, err)
	}
	dl := deadLetterFrom(seq, raw.Header, raw.Data)
	return &dl, nil
}

// deadLetterPage is how many dead letters a bulk operation reads at once.
const deadLetterPage = 256

// ReplayDeadLetters replays, one by one as [ReplayDeadLetter] does, every
// dead letter filter selects that was stored when the call began — so a
// replay that fails again, and is dead-lettered again, is not replayed a
// second time by the same call. progress, when not nil, is called after
// each dead letter with how many were gone through and how many there
// were. It returns how many it replayed. A dead letter that cannot be
// replayed (its topic's stream was deleted, it is not a Ferry dead
// letter) is left where it is and the call goes on with the next: the
// error then says which ones failed, and why. One that someone else
// replayed or deleted meanwhile is skipped, not counted. The call stops
// early only when ctx ends.
func ReplayDeadLetters(ctx context.Context, c *Client, filter DeadLetterFilter, progress func(done, total int)) (int, error) {
	return eachDeadLetter(ctx, c, filter, progress, "replay", func(dl DeadLetter) error {
		_, err := ReplayDeadLetter(ctx, c, dl.Sequence)
		return err
	})
}

// PurgeDeadLetters deletes, for good, every dead letter filter selects
// that was stored when the call began, and returns how many; like
// [ReplayDeadLetters], it goes on past one it cannot delete and says
// which ones failed.
func PurgeDeadLetters(ctx context.Context, c *Client, filter DeadLetterFilter) (int, error) {
	return eachDeadLetter(ctx, c, filter, nil, "delete", func(dl DeadLetter) error {
		return DeleteDeadLetter(ctx, c, dl.Sequence)
	})
}

// maxBulkErrors is how many failures a bulk operation's error names.
const maxBulkErrors = 10

// eachDeadLetter calls do for each dead letter filter selects up to the
// dead-letter stream's last sequence when it began, a page at a time, and
// returns how many it did; a failure is collected and the next one done.
func eachDeadLetter(ctx context.Context, c *Client, filter DeadLetterFilter, progress func(done, total int), verb string, do func(DeadLetter) error) (int, error) {
	js, err := c.jetStream()
	if err != nil {
		return 0, err
	}
	stream, err := js.Stream(ctx, naming.DeadLetterStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("ferry: dead letters: %w", err)
	}
	last := stream.CachedInfo().State.LastSeq
	total, err := countDeadLetters(ctx, js, filter, last)
	if err != nil {
		return 0, err
	}
	var failures []error
	failed, done, seen := 0, 0, 0
	for seen < total {
		page, err := ListDeadLetters(ctx, c, filter, deadLetterPage)
		if err != nil {
			return done, bulkError(verb, done, failed, append(failures, err))
		}
		n := 0
		for _, dl := range page {
			if dl.Sequence > last {
				break
			}
			err := do(dl)
			switch {
			case ctx.Err() != nil:
				return done, bulkError(verb, done, failed, append(failures, ctx.Err()))
			case isNotFoundError(err):
				// replayed or deleted by someone else meanwhile
			case err != nil:
				failed++
				if len(failures) < maxBulkErrors {
					failures = append(failures, fmt.Errorf("dead letter %d: %w", dl.Sequence, err))
				}
			default:
				done++
			}
			seen++
			n++
			filter.After = dl.Sequence
			if progress != nil {
				progress(seen, total)
			}
		}
		if n == 0 {
			break // the rest were removed by someone else
		}
	}
	return done, bulkError(verb, done, failed, failures)
}

// bulkError sums up a bulk operation's failures; nil without any.
func bulkError(verb string, done, failed int, failures []error) error {
	if len(failures) == 0 {
		return nil
	}
	head := fmt.Errorf("ferry: %s dead letters: %d done, %d failed", verb, done, failed)
	if failed > len(failures) {
		head = fmt.Errorf("%w (the first %d below)", head, len(failures))
	}
	return errors.Join(append([]error{head}, failures...)...)
}

// countDeadLetters counts the dead letters filter selects up to last.
func countDeadLetters(ctx context.Context, js jetstream.JetStream, filter DeadLetterFilter, last uint64) (int, error) {
	if last == 0 || last <= filter.After {
		return 0, nil
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter.subject()}}
	if filter.After > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, filter.After+1
	}
	cons, err := js.OrderedConsumer(ctx, naming.DeadLetterStream, cfg)
	if err != nil {
		return 0, fmt.Errorf("ferry: dead letters: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = js.DeleteConsumer(dctx, naming.DeadLetterStream, cons.CachedInfo().Name)
	}()
	info, err := cons.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("ferry: dead letters: %w", err)
	}
	return int(info.NumPending), nil
}

// isNotFoundError reports the 404 of a dead letter that is gone.
func isNotFoundError(err error) bool {
	var fe *Error
	return errors.As(err, &fe) && fe.Status == 404
}
