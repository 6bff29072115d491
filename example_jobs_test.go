package ferry_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/ferrygo/ferry"
)

// Thumbnail is the input of the example job; Thumbnailed its output.
type Thumbnail struct {
	ImageURL string `json:"image_url" format:"uri"`
	Width    int    `json:"width" minimum:"16" maximum:"4096"`
}

type Thumbnailed struct {
	URL string `json:"url"`
}

// MakeThumbnail is declared in the worker service's contract package.
var MakeThumbnail = ferry.Job[Thumbnail, Thumbnailed]{Name: "make-thumbnail"}

// A worker service binds the job's handler; any client enqueues jobs and
// reads their records. Enqueue returns once the job is stored.
func ExampleJob() {
	dir, _ := os.MkdirTemp("", "ferry-example")
	defer os.RemoveAll(dir)
	cfg := ferry.Config{NATSEmbed: true, DataDir: dir}

	images := ferry.MustNew("images", "1.0.0", ferry.WithConfig(cfg), ferry.WithoutHTTP(), quiet)
	ferry.HandleJob(images, MakeThumbnail, func(ctx context.Context, in *Thumbnail, p *ferry.Progress) (*Thumbnailed, error) {
		p.Set(50, "resizing")
		return &Thumbnailed{URL: fmt.Sprintf("%s?w=%d", in.ImageURL, in.Width)}, nil
	})
	host, _ := ferry.NewHost(ferry.WithConfig(cfg), quiet)
	_ = host.Add(images)
	ctx := context.Background()
	if err := host.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer host.Shutdown(ctx)

	client := images.Client()
	id, err := MakeThumbnail.Enqueue(ctx, client, &Thumbnail{ImageURL: "https://img.example/cat.png", Width: 128},
		ferry.EnqueueKey("cat-128", time.Hour))
	if err != nil {
		fmt.Println(err)
		return
	}
	for {
		rec, err := MakeThumbnail.Get(ctx, client, id)
		if err != nil {
			fmt.Println(err)
			return
		}
		if rec.State.Final() {
			fmt.Println(rec.State, rec.Attempts, rec.Result.URL)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Output:
	// succeeded 1 https://img.example/cat.png?w=128
}
