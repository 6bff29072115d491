package ferrytest_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

type Greeting struct {
	To string `json:"to"`
}

var greeted = ferry.Topic[Greeting]{Name: "greeted", Subject: "test.greeted"}

type GreetInput struct {
	Name string `path:"name"`
}

type GreetOutput struct {
	Body Greeting
}

var greet = ferry.Endpoint[GreetInput, GreetOutput]{Service: "greeter", Name: "greet", Method: http.MethodPost, Path: "/greet/{name}"}

// A test of a service's event flow: call its endpoint, capture what it
// published.
func TestCaptureWhatAServicePublished(t *testing.T) {
	svc := ferry.MustNew("greeter", "1.0.0", ferry.WithConfig(ferrytest.Config(t)), ferry.WithNATS(), ferry.WithLogger(ferrytest.Logger(t)))
	pub := ferry.NewPublisher(svc, greeted)
	ferry.Handle(svc, greet, func(ctx context.Context, in *GreetInput) (*GreetOutput, error) {
		g := Greeting{To: in.Name}
		// The same message ID twice: stored, and captured, once.
		for range 2 {
			if _, err := pub.Publish(ctx, &g, ferry.PublishMessageID("greet-"+in.Name)); err != nil {
				return nil, err
			}
		}
		return &GreetOutput{Body: g}, nil
	})
	h := ferrytest.Start(t, svc)
	captured := ferrytest.Capture(t, h, greeted)

	for _, name := range []string{"ann", "bob"} {
		if _, err := greet.Call(context.Background(), h.Client, &GreetInput{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	events := captured.Wait(t, 2)
	if len(events) != 2 || events[0].To != "ann" || events[1].To != "bob" {
		t.Errorf("captured %+v", events)
	}
	if ids := captured.IDs(); ids[0] != "greet-ann" {
		t.Errorf("IDs %v", ids)
	}
}

func TestEventually(t *testing.T) {
	n := 0
	ferrytest.Eventually(t, func() bool { n++; return n == 3 }, "the third poll")
	if n != 3 {
		t.Errorf("polled %d times", n)
	}
}

// TestStartGivesEachServiceAFreePort: services created with no
// configuration listen on free loopback ports of their own.
func TestStartGivesEachServiceAFreePort(t *testing.T) {
	a, b := ferry.MustNew("a", "1.0.0"), ferry.MustNew("b", "1.0.0")
	ferrytest.Start(t, a, b)
	if a.Addr() == nil || b.Addr() == nil || a.Addr().String() == b.Addr().String() ||
		!strings.HasPrefix(a.Addr().String(), "127.0.0.1:") {
		t.Fatalf("addresses %v and %v", a.Addr(), b.Addr())
	}
}

type squareIn struct {
	N int `json:"n"`
}

type squareOut struct {
	Square int `json:"square"`
}

var square = ferry.Job[squareIn, squareOut]{Name: "square"}

func TestRunJobsAndWait(t *testing.T) {
	release := make(chan struct{})
	h := ferrytest.RunJobs(t, square, func(ctx context.Context, in *squareIn, _ *ferry.Progress) (*squareOut, error) {
		if in.N < 0 {
			<-release
		}
		return &squareOut{Square: in.N * in.N}, nil
	})
	ctx := context.Background()
	id, err := square.Enqueue(ctx, h.Client, &squareIn{N: 7})
	if err != nil {
		t.Fatal(err)
	}
	if rec := ferrytest.WaitJob(t, h, square, id); rec.State != ferry.JobSucceeded || rec.Result.Square != 49 {
		t.Errorf("record %+v", rec)
	}
	slow, err := square.Enqueue(ctx, h.Client, &squareIn{N: -1})
	if err != nil {
		t.Fatal(err)
	}
	ferrytest.WaitJobState(t, h, square, slow, ferry.JobRunning)
	close(release)
	ferrytest.WaitJobState(t, h, square, slow, ferry.JobSucceeded)
}
