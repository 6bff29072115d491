package dashboard

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// refreshTimeout bounds one refresh (its parts run at once, each within
// partTimeout; the jobs and documents come after the services).
const refreshTimeout = 3 * partTimeout

// hub shares one refresh among every connected browser: a loop runs
// while someone is subscribed, and stops when the last one leaves.
type hub struct {
	interval time.Duration
	build    func(context.Context) []byte
	base     context.Context // ended by close
	stop     context.CancelFunc

	mu      sync.Mutex
	subs    map[chan []byte]struct{}
	running bool
	kick    chan struct{}
	loops   sync.WaitGroup

	refreshMu sync.Mutex // one refresh at a time
	latest    []byte
	latestAt  time.Time
	stale     atomic.Bool // an action changed the system since latest
}

func newHub(interval time.Duration, build func(context.Context) []byte) *hub {
	ctx, cancel := context.WithCancel(context.Background())
	return &hub{interval: interval, build: build, base: ctx, stop: cancel, subs: map[chan []byte]struct{}{}, kick: make(chan struct{}, 1)}
}

// subscribe returns a channel that receives each new snapshot (only the
// latest, if the reader falls behind) and the function that ends the
// subscription.
func (h *hub) subscribe() (<-chan []byte, func()) {
	ch := make(chan []byte, 1)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.base.Err() != nil {
		close(ch)
		return ch, func() {}
	}
	h.subs[ch] = struct{}{}
	if !h.running {
		h.running = true
		h.loops.Add(1)
		go h.loop()
	}
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.subs, ch)
	}
}

// loop refreshes every interval (or at once when kicked) and sends the
// snapshot to every subscriber, until none is left or the hub closes.
func (h *hub) loop() {
	defer h.loops.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-h.base.Done():
			return
		case <-timer.C:
		case <-h.kick:
		}
		h.mu.Lock()
		if len(h.subs) == 0 {
			h.running = false
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		b := h.current(h.interval / 2)
		if b == nil {
			return // closed
		}
		h.mu.Lock()
		for ch := range h.subs {
			select { // only the latest matters: replace an unread one
			case <-ch:
			default:
			}
			ch <- b
		}
		h.mu.Unlock()
		timer.Reset(h.interval)
	}
}

// current returns a snapshot at most maxAge old, refreshing it if need
// be (one refresh at a time: concurrent callers share it); nil once the
// hub is closed.
func (h *hub) current(maxAge time.Duration) []byte {
	h.refreshMu.Lock()
	defer h.refreshMu.Unlock()
	if h.base.Err() != nil {
		return nil
	}
	if h.latest != nil && time.Since(h.latestAt) < maxAge && !h.stale.Load() {
		return h.latest
	}
	h.stale.Store(false)
	ctx, cancel := context.WithTimeout(h.base, refreshTimeout)
	defer cancel()
	b := h.build(ctx)
	if h.base.Err() != nil {
		return nil
	}
	h.latest, h.latestAt = b, time.Now()
	return b
}

// invalidate makes the next snapshot a fresh one and sends it soon:
// after an action changed the system.
func (h *hub) invalidate() {
	h.stale.Store(true)
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// close stops the loop and ends the subscriptions' streams.
func (h *hub) close() { h.stop() }

// done is closed when the hub is.
func (h *hub) done() <-chan struct{} { return h.base.Done() }

// wait waits for the loop to return.
func (h *hub) wait() { h.loops.Wait() }
