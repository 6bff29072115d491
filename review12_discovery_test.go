package ferry_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// TestReview12DiscoveryFloodIsBounded: anyone on the broker may answer
// $SRV.INFO, and as often as it likes. ListServices (run by the
// dashboard every 2 s and by `ferry services`) keeps every answer's bytes
// until the wait ends, even answers that are not a service's at all, so
// one participant answering with a flood of large garbage makes the
// caller hold hundreds of megabytes. A bound on what one listing keeps
// (answers or bytes) is expected; 16 MiB is generous for discovery.
//
// Failed before the fix: gather keeps about 100 MiB of garbage.
func TestReview12DiscoveryFloodIsBounded(t *testing.T) {
	h := ferrytest.Start(t, ferry.MustNew("real", "1.0.0", ferry.WithNATS(), ferry.WithoutHTTP(), quiet))
	nc := h.NATS()
	garbage := bytes.Repeat([]byte("x"), 512<<10)
	sub, err := nc.Subscribe("$SRV.INFO", func(m *nats.Msg) {
		go func() {
			for range 200 {
				if nc.Publish(m.Reply, garbage) != nil {
					return
				}
			}
		}()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	_ = nc.Flush()

	answers, err := ferry.Review12Gather(context.Background(), nc, "$SRV.INFO")
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, a := range answers {
		total += len(a)
	}
	t.Logf("one discovery round kept %d answers, %d MiB", len(answers), total>>20)
	if total > 16<<20 {
		t.Errorf("one discovery round kept %d MiB of answers (%d of them) from one participant: unbounded", total>>20, len(answers))
	}
}
