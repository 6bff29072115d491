package dashboard

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/internal/naming"
)

// maxDeadLetterScan bounds the dead-letter stream's sequences one
// snapshot looks back over for the newest dead letters (replayed and
// deleted ones leave gaps).
const maxDeadLetterScan = 4096

// newestDeadLetters returns the newest n dead letters, newest first, and
// how many the dead-letter stream holds. It asks the stream for its last
// sequence, then lists from a little before it, looking further back
// while it has fewer than n and the stream holds more.
func newestDeadLetters(ctx context.Context, c *ferry.Client, n int) (DeadLettersView, error) {
	out := DeadLettersView{Items: []DeadLetterView{}}
	js, err := jetstream.New(c.Conn())
	if err != nil {
		return out, err
	}
	stream, err := js.Stream(ctx, naming.DeadLetterStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return out, nil // nothing ever dead-lettered
	}
	if err != nil {
		return out, fmt.Errorf("dead-letter stream: %w", err)
	}
	st := stream.CachedInfo().State
	out.Total = int(st.Msgs)
	if st.Msgs == 0 {
		return out, nil
	}
	var page []ferry.DeadLetter
	for back := uint64(2 * n); ; back *= 4 {
		after := uint64(0)
		if st.LastSeq > back {
			after = st.LastSeq - back
		}
		if after < st.FirstSeq {
			after = 0
		}
		page, err = ferry.ListDeadLetters(ctx, c, ferry.DeadLetterFilter{After: after}, int(min(back, uint64(maxDeadLetterScan))))
		if err != nil {
			return out, err
		}
		if len(page) >= n || after == 0 || back >= maxDeadLetterScan {
			break
		}
	}
	slices.Reverse(page)
	for _, dl := range page[:min(n, len(page))] {
		out.Items = append(out.Items, DeadLetterView{Sequence: dl.Sequence, Topic: dl.Topic, Service: dl.Service, Consumer: dl.Consumer,
			Job: dl.Consumer == naming.JobDeadLetterConsumer, Error: dl.Error, Deliveries: dl.Deliveries, Time: dl.Time,
			MessageID: dl.MessageID, Size: len(dl.Data), Preview: preview(dl.Data)})
	}
	return out, nil
}
