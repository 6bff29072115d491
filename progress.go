package ferry

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/ferrygo/ferry/internal/jobs"
)

// progressInterval is the least time between two progress writes of one
// job: a handler may report as often as it likes; the record gets the
// latest value at most this often, and at the end.
const progressInterval = 500 * time.Millisecond

// maxProgressMessage bounds a progress message, in bytes, so a report
// never makes the job's record too large to write.
const maxProgressMessage = 2000

// Progress reports how far a running job is. Its reports are durable: they
// are written to the job's record (the latest at most twice a second, and
// the last one when the job ends), where [Job.Get] and the job's event
// stream read them. A Progress is safe for concurrent use.
type Progress struct {
	mu      sync.Mutex
	latest  *jobs.Progress // reported, not yet written
	wake    chan struct{}
	done    chan struct{}
	stopped chan struct{}
	write   func(ctx context.Context, p jobs.Progress) error
}

// Set reports that the job is percent done (0 to 100; values outside are
// clamped), doing what message says. It never blocks on the broker.
func (p *Progress) Set(percent float64, message string) {
	if p == nil {
		return
	}
	if math.IsNaN(percent) {
		percent = 0 // JSON has no NaN: a record carrying it could not be written
	}
	percent = min(max(percent, 0), 100)
	p.mu.Lock()
	p.latest = &jobs.Progress{Percent: percent, Message: truncate(message, maxProgressMessage)}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// newProgress starts the writer of a job's progress reports.
func newProgress(write func(ctx context.Context, p jobs.Progress) error) *Progress {
	p := &Progress{wake: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{}), write: write}
	go p.run()
	return p
}

// run writes the latest report, then waits progressInterval before the
// next write.
func (p *Progress) run() {
	defer close(p.stopped)
	for {
		select {
		case <-p.wake:
		case <-p.done:
			return
		}
		p.mu.Lock()
		latest := p.latest
		p.latest = nil
		p.mu.Unlock()
		if latest != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = p.write(ctx, *latest) // a lost report is superseded by the next, and by the end
			cancel()
		}
		select {
		case <-time.After(progressInterval):
		case <-p.done:
			return
		}
	}
}

// stop ends the writer and returns the report not yet written, if any,
// for the job's final write.
func (p *Progress) stop() *jobs.Progress {
	close(p.done)
	<-p.stopped
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.latest
}
