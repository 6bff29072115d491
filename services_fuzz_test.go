package ferry

import (
	"slices"
	"strings"
	"testing"
)

// FuzzDecodeInstances feeds arbitrary discovery answers — anyone on the
// broker may answer $SRV.INFO and $SRV.STATS — to ListServices' decoder:
// it never panics, and lists each instance once, with an ID, in order.
func FuzzDecodeInstances(f *testing.F) {
	info := `{"name":"store","id":"A1","version":"1.0.0","type":"io.nats.micro.v1.info_response","endpoints":[{"name":"get","subject":"ferry.store.get","metadata":{"method":"GET"}}]}`
	stats := `{"name":"store","id":"A1","version":"1.0.0","type":"io.nats.micro.v1.stats_response","started":"2026-01-01T00:00:00Z","endpoints":[{"name":"get","num_requests":3,"num_errors":1,"processing_time":30,"average_processing_time":10,"last_error":"x","data":{"window":60000000000,"http":{"requests":1,"rate":0.1,"p50":100,"p99":900},"nats":{}}}]}`
	f.Add(info, stats, info)
	f.Add(info, `{"id":"A1","endpoints":[null,{"name":"get","data":"nope"}]}`, `{}`)
	f.Add(`{"id":"B","type":"io.nats.micro.v1.info_response","endpoints":null}`, `null`, `[1,2]`)
	f.Fuzz(func(t *testing.T, a, b, c string) {
		out := decodeInstances([][]byte{[]byte(a), []byte(c)}, [][]byte{[]byte(b), []byte(c)})
		seen := map[string]bool{}
		for _, inst := range out {
			if inst.ID == "" || seen[inst.ID] {
				t.Fatalf("instance without an ID, or listed twice: %+v", out)
			}
			seen[inst.ID] = true
			if len(inst.Endpoints) > 0 && inst.Endpoints[0].Recent != nil && inst.Endpoints[0].Recent.Window <= 0 {
				t.Fatalf("recent figures without a window: %+v", inst.Endpoints[0])
			}
		}
		if !slices.IsSortedFunc(out, func(x, y ServiceInstance) int {
			if c := strings.Compare(x.Name, y.Name); c != 0 {
				return c
			}
			return strings.Compare(x.ID, y.ID)
		}) {
			t.Fatalf("not sorted: %+v", out)
		}
	})
}
