package ferry_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// Found by review: the owner of a state bucket "never lowers a size limit an
// operator raised" (internal/provision.Bucket), but the check is
// MaxBytes > Ferry's limit, and JetStream's "no limit" is -1: an operator
// who lifts the limit altogether sees the next start put Ferry's
// default (256 MiB) back, which is lowering it.
func TestStateBucketUnlimitedSizeIsKept(t *testing.T) {
	cfg := ferrytest.Config(t)
	newSvc := func() *ferry.Service {
		svc := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP(), quiet)
		ferry.Subscribe(svc, placed, "ship", func(context.Context, *OrderPlaced) error { return nil })
		return svc
	}
	start := func() *ferry.Host {
		h, err := ferry.NewHost(ferry.WithConfig(cfg), quiet)
		if err != nil {
			t.Fatal(err)
		}
		_ = h.Add(newSvc())
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := h.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return h
	}
	stop := func(h *ferry.Host) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
	}
	h := start()
	ctx := context.Background()
	js, _ := jetstream.New(h.NATS())
	s, err := js.Stream(ctx, "KV_ferry-state-shipping")
	if err != nil {
		t.Fatal(err)
	}
	scfg := s.CachedInfo().Config
	scfg.MaxBytes = -1 // the operator lifts the limit
	if _, err := js.UpdateStream(ctx, scfg); err != nil {
		t.Fatal(err)
	}
	stop(h)

	h = start()
	defer stop(h)
	js, _ = jetstream.New(h.NATS())
	s, err = js.Stream(ctx, "KV_ferry-state-shipping")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxBytes; got != -1 {
		t.Errorf("after a restart the state bucket's MaxBytes is %d; the operator had lifted the limit (-1), and the owner lowered it", got)
	}
}
