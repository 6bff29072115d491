package lifecycle

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// journal records the steps of components in order.
type journal struct {
	mu    sync.Mutex
	steps []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.steps = append(j.steps, s)
}

func (j *journal) get() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.steps)
}

func recorded(j *journal, name string, startErr error, drain func(context.Context) error) Component {
	return Funcs{
		ComponentName: name,
		OnStart:       func(context.Context) error { j.add("start " + name); return startErr },
		OnStopIntake:  func() { j.add("intake " + name) },
		OnDrain: func(ctx context.Context) error {
			j.add("drain " + name)
			if drain != nil {
				return drain(ctx)
			}
			return nil
		},
		OnClose: func(context.Context) error { j.add("close " + name); return nil },
	}
}

func TestOrder(t *testing.T) {
	j := &journal{}
	g := New(nil)
	g.Add(recorded(j, "broker", nil, nil))
	g.Add(recorded(j, "subs", nil, nil))
	g.Add(recorded(j, "http", nil, nil))
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := g.Stop(context.Background(), context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"start broker", "start subs", "start http",
		"intake http", "drain http", "close http", "intake subs", "drain subs", "close subs", "intake broker", "drain broker", "close broker"}
	if got := j.get(); !slices.Equal(got, want) {
		t.Errorf("steps\n%v\nwant\n%v", got, want)
	}
	if err := g.Stop(context.Background(), context.Background()); err != nil || len(j.get()) != len(want) {
		t.Errorf("a second Stop did work again")
	}
}

func TestFailedStartStopsWhatStarted(t *testing.T) {
	j := &journal{}
	g := New(nil)
	g.Add(recorded(j, "broker", nil, nil))
	g.Add(recorded(j, "subs", nil, func(ctx context.Context) error {
		<-ctx.Done() // work in flight: not waited for after a failed start
		return ctx.Err()
	}))
	g.Add(recorded(j, "http", errors.New("address in use"), nil))
	g.Add(recorded(j, "never", nil, nil))
	err := g.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "address in use") {
		t.Fatalf("Start = %v", err)
	}
	want := []string{"start broker", "start subs", "start http",
		"intake http", "drain http", "close http", "intake subs", "drain subs", "close subs", "intake broker", "drain broker", "close broker"}
	if got := j.get(); !slices.Equal(got, want) {
		t.Errorf("steps\n%v\nwant\n%v", got, want)
	}
}

func TestStopIsBoundedByTheDrainDeadline(t *testing.T) {
	g := New(nil)
	release := make(chan struct{})
	defer close(release)
	g.Add(Funcs{ComponentName: "hung", OnDrain: func(ctx context.Context) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return errors.New("1 handler left running")
		}
	}})
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- g.Stop(ctx, ctx) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "hung: 1 handler left running") {
			t.Errorf("Stop = %v, want the abandoned work named", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not return after its deadline")
	}
}
