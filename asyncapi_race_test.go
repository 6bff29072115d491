package ferry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// raceItem and racePayload give the schemas plenty to validate: required
// properties, a nested type, minimum, pattern and length constraints.
type raceItem struct {
	SKU string `json:"sku" pattern:"^[a-z]+$" maxLength:"16"`
	Qty int    `json:"qty" minimum:"1"`
}

type racePayload struct {
	OrderID string     `json:"order_id" minLength:"1"`
	Items   []raceItem `json:"items" minItems:"1"`
	Note    string     `json:"note,omitempty" maxLength:"100"`
}

// TestAsyncAPIWhileDecodingEvents serves the AsyncAPI document over and
// over while the decoder of a subscribed topic checks events: under -race,
// building the document must not write to the schemas the decoder reads.
func TestAsyncAPIWhileDecodingEvents(t *testing.T) {
	topic := Topic[racePayload]{Name: "race-placed", Subject: "race.placed"}
	other := Topic[raceItem]{Name: "race-item", Subject: "race.item"}
	svc := MustNew("racer", "1.0.0")
	Subscribe(svc, topic, "watch", func(context.Context, *racePayload) error { return nil })
	NewPublisher(svc, other)
	decode := payloadDecoder[racePayload](svc.messages, declOf(topic))
	h := svc.Handler()

	payloads := []struct {
		data  string
		valid bool
	}{
		{`{"order_id":"o-1","items":[{"sku":"kettle","qty":2}]}`, true},
		{`{"order_id":"","items":[{"sku":"kettle","qty":2}]}`, false},
		{`{"order_id":"o-2","items":[{"sku":"Kettle","qty":0}]}`, false},
		{`{"items":[]}`, false},
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range 200 {
				p := payloads[i%len(payloads)]
				var v racePayload
				if err := decode([]byte(p.data), &v); (err == nil) != p.valid {
					t.Errorf("decode %s: %v, want valid=%v", p.data, err, p.valid)
					return
				}
			}
		})
	}
	for _, path := range []string{"/asyncapi.json", "/asyncapi.yaml"} {
		wg.Go(func() {
			for range 20 {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				if rec.Code != http.StatusOK {
					t.Errorf("GET %s: %d %s", path, rec.Code, rec.Body)
					return
				}
			}
		})
	}
	wg.Wait()

	// The document is the same on every request.
	first, second := getBody(t, h, "/asyncapi.json"), getBody(t, h, "/asyncapi.json")
	if first != second {
		t.Errorf("the document changed between requests:\n%s\n%s", first, second)
	}
}

func getBody(t *testing.T, h http.Handler, path string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d", path, rec.Code)
	}
	return rec.Body.String()
}

// TestAsyncAPIFollowsDeclarations: the document is built once for a set of
// declarations, and again when a declaration is added before the service
// starts.
func TestAsyncAPIFollowsDeclarations(t *testing.T) {
	svc := MustNew("racer", "1.0.0")
	NewPublisher(svc, Topic[raceItem]{Name: "race-item", Subject: "race.item"})
	before, err := svc.AsyncAPI()
	if err != nil {
		t.Fatal(err)
	}
	again, _ := svc.AsyncAPI()
	if string(before) != string(again) {
		t.Error("the document changed with no new declaration")
	}
	Subscribe(svc, Topic[racePayload]{Name: "race-placed", Subject: "race.placed"}, "watch", func(context.Context, *racePayload) error { return nil })
	after, _ := svc.AsyncAPI()
	for _, want := range []string{`"receive-race-placed-watch"`, `"ferry.RacePayload"`, `"publish-race-item"`} {
		if !strings.Contains(string(after), want) {
			t.Errorf("the document lacks %s after a new subscription:\n%s", want, after)
		}
	}
}
