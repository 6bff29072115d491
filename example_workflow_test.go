package ferry_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/ferrygo/ferry"
)

// Booking is the input of the example workflow; Booked its output.
type Booking struct {
	Guest  string `json:"guest" minLength:"1"`
	Nights int    `json:"nights" minimum:"1"`
}

type Booked struct {
	Room    string `json:"room"`
	Charged int    `json:"charged"`
}

// BookStay is declared in the worker service's contract package.
var BookStay = ferry.Workflow[Booking, Booked]{Name: "book-stay"}

// A worker service binds the workflow's function; any client starts runs,
// sends them signals and reads their records. Each step completes at most
// once per run; a wait holds no worker slot.
func ExampleWorkflow() {
	dir, _ := os.MkdirTemp("", "ferry-example")
	defer os.RemoveAll(dir)
	cfg := ferry.Config{NATSEmbed: true, DataDir: dir}

	hotel := ferry.MustNew("hotel", "1.0.0", ferry.WithConfig(cfg), ferry.WithoutHTTP(), quiet)
	ferry.HandleWorkflow(hotel, BookStay, func(ctx ferry.WorkflowContext, in *Booking) (*Booked, error) {
		room, err := ferry.StepWithCompensation(ctx, "hold-room",
			func(ctx context.Context) (string, error) { return "room-12", nil },            // idempotent by ferry.StepKey(ctx)
			func(ctx context.Context, room string) error { return nil /* release room */ }) // runs if a later step fails
		if err != nil {
			return nil, err
		}
		rate, err := ferry.Receive[int](ctx, "rate", time.Hour) // waits durably for a signal
		if err != nil {
			return nil, err
		}
		charged, err := ferry.Step(ctx, "charge", func(ctx context.Context) (int, error) { return rate * in.Nights, nil })
		if err != nil {
			return nil, err
		}
		return &Booked{Room: room, Charged: charged}, nil
	})
	host, _ := ferry.NewHost(ferry.WithConfig(cfg), quiet)
	_ = host.Add(hotel)
	ctx := context.Background()
	if err := host.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer host.Shutdown(ctx)

	client := hotel.Client()
	id, err := BookStay.Start(ctx, client, &Booking{Guest: "ada", Nights: 3}, ferry.EnqueueKey("ada-booking", time.Hour))
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := ferry.Send(ctx, client, id, "rate", 120); err != nil {
		fmt.Println(err)
		return
	}
	rec, err := BookStay.Wait(ctx, client, id)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rec.State, rec.Result.Room, rec.Result.Charged, rec.Steps)
	// Output: succeeded room-12 360 3
}
