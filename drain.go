package ferry

import (
	"context"
	"sync"
)

// Draining returns a channel that is closed when the host running the
// request starts shutting down — at the start of the drain delay, before
// the listeners close. A streaming response (server-sent events, a long
// poll) selects on it to end itself, so the client reconnects to another
// instance while this one drains; other requests can ignore it, as they
// are let finish. Outside a request of a started host it returns nil,
// which never fires.
func Draining(ctx context.Context) <-chan struct{} {
	d, _ := ctx.Value(drainingKey{}).(*drainSignal)
	if d == nil {
		return nil
	}
	return d.ch
}

type drainingKey struct{}

// drainSignal is closed once when the host's shutdown starts.
type drainSignal struct {
	once sync.Once
	ch   chan struct{}
}

func newDrainSignal() *drainSignal { return &drainSignal{ch: make(chan struct{})} }

func (d *drainSignal) fire() { d.once.Do(func() { close(d.ch) }) }

// baseContext is the base of every request context of a host's HTTP
// servers: it carries the drain signal.
func (d *drainSignal) baseContext() context.Context {
	return context.WithValue(context.Background(), drainingKey{}, d)
}
