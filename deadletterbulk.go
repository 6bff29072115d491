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
// each replay with how many were replayed and how many there were. It
// returns how many it replayed, stopping at the first failure (what it
// replayed is gone from the dead letters: calling again goes on).
func ReplayDeadLetters(ctx context.Context, c *Client, filter DeadLetterFilter, progress func(done, total int)) (int, error) {
	return eachDeadLetter(ctx, c, filter, progress, func(dl DeadLetter) error {
		_, err := ReplayDeadLetter(ctx, c, dl.Sequence)
		if isNotFoundError(err) {
			return nil // replayed or deleted by someone else meanwhile
		}
		return err
	})
}

// PurgeDeadLetters deletes, for good, every dead letter filter selects
// that was stored when the call began, and returns how many.
func PurgeDeadLetters(ctx context.Context, c *Client, filter DeadLetterFilter) (int, error) {
	return eachDeadLetter(ctx, c, filter, nil, func(dl DeadLetter) error {
		err := DeleteDeadLetter(ctx, c, dl.Sequence)
		if isNotFoundError(err) {
			return nil
		}
		return err
	})
}

// eachDeadLetter calls do for each dead letter filter selects up to the
// dead-letter stream's last sequence when it began, a page at a time.
func eachDeadLetter(ctx context.Context, c *Client, filter DeadLetterFilter, progress func(done, total int), do func(DeadLetter) error) (int, error) {
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
	done := 0
	for done < total {
		page, err := ListDeadLetters(ctx, c, filter, deadLetterPage)
		if err != nil {
			return done, err
		}
		n := 0
		for _, dl := range page {
			if dl.Sequence > last {
				break
			}
			if err := do(dl); err != nil {
				return done, err
			}
			done++
			n++
			filter.After = dl.Sequence
			if progress != nil {
				progress(done, total)
			}
		}
		if n == 0 {
			break // the rest were removed by someone else
		}
	}
	return done, nil
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
