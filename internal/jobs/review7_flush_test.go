package jobs

// finding 4: Flush waits until no index write of the store is pending at
// all, not for the writes started before it. In a process that keeps
// changing jobs (a worker service, an API that enqueues), the pending
// count rarely reaches zero, so every ListJobs of that client waits its
// full 2 s flush bound (jobListFlushWait) before reading a page: listing
// becomes slowest exactly when the service is busy.

import (
	"context"
	"testing"
	"time"
)

func TestReview7FlushWaitsOnlyForEarlierWrites(t *testing.T) {
	s := &Store{}
	before := s.writes.add() // a write started before the Flush
	flushed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		flushed <- s.Flush(ctx)
	}()
	time.Sleep(50 * time.Millisecond) // let Flush start waiting
	s.writes.add()                    // a write started after it, never acknowledged here
	s.writes.done(before)             // the earlier write is acknowledged
	if err := <-flushed; err != nil {
		t.Fatalf("Flush after its earlier write was acknowledged: %v (it waited for a later write)", err)
	}
}
