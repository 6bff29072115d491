package metrics

import (
	"context"
	"sync"
	"time"
)

// cached keeps a collector's latest reading of JetStream: a scrape starts
// a new reading in the background when the last one is older than its
// maximum age, and waits for it only a bounded time, so a slow or absent
// broker never blocks a scrape. Shared by the collectors of subscriptions
// and of jobs.
type cached[R any] struct {
	mu         sync.Mutex
	last       R
	readAt     time.Time // when last was read; zero before the first reading
	tried      time.Time // when the last reading started
	refreshing chan struct{}
}

// previous returns the latest reading, for a new one to start from.
func (c *cached[R]) previous() R {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// current returns the latest reading and when it was made (zero: none
// yet), starting a new reading with read (bounded by timeout) if the last
// is older than maxAge, and waiting for it at most wait. A reading for
// which fresh is false (nothing could be read) replaces the last but
// keeps its time.
func (c *cached[R]) current(maxAge, wait, timeout time.Duration, read func(context.Context) R, fresh func(R) bool) (R, time.Time) {
	c.mu.Lock()
	if c.refreshing == nil && time.Since(c.tried) >= maxAge {
		c.tried = time.Now()
		done := make(chan struct{})
		c.refreshing = done
		go c.refresh(done, timeout, read, fresh)
	}
	done := c.refreshing
	c.mu.Unlock()
	if done != nil {
		t := time.NewTimer(wait)
		select {
		case <-done:
		case <-t.C:
		}
		t.Stop()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last, c.readAt
}

func (c *cached[R]) refresh(done chan struct{}, timeout time.Duration, read func(context.Context) R, fresh func(R) bool) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r := read(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = r
	if fresh(r) {
		c.readAt = time.Now()
	}
	c.refreshing = nil
	close(done)
}
