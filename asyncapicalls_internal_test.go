package ferry

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestCallLog: the log keeps each endpoint once, at most maxObservedCalls
// of them, never invalid names, and records only calls made inside a
// request of its service.
func TestCallLog(t *testing.T) {
	var l callLog
	for i := range maxObservedCalls + 10 {
		l.add("svc", fmt.Sprintf("ep-%d", i))
		l.add("svc", fmt.Sprintf("ep-%d", i))
	}
	l.add("bad name", "x")
	l.add("svc", "bad.name")
	if got := len(l.calls()); got != maxObservedCalls {
		t.Errorf("%d calls, want %d", got, maxObservedCalls)
	}
	for _, c := range l.calls() {
		if strings.Contains(c.Service, " ") || strings.Contains(c.Name, ".") {
			t.Errorf("invalid call recorded: %+v", c)
		}
	}

	var m callLog
	noteCall(context.Background(), "a", "b")
	noteCall(withRequest(context.Background(), &Request{}), "a", "b")
	if _, has := m.generation(); has {
		t.Error("a call outside a request was recorded")
	}
	noteCall(withRequest(context.Background(), &Request{calls: &m}), "a", "b")
	if calls := m.calls(); len(calls) != 1 || calls[0].Subject != "ferry.a.b" {
		t.Errorf("calls = %+v", calls)
	}
}

// TestObservedDocumentCached: the document with calls is built once per
// new call, and calls recorded while documents are served are race-free.
func TestObservedDocumentCached(t *testing.T) {
	svc := MustNew("watcher", "1.0.0")
	Get(svc, "look", "/look", func(context.Context, *struct{}) (*struct{}, error) { return nil, nil })
	first, err := svc.servedAsyncAPI()
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := svc.servedAsyncAPI(); again != first {
		t.Error("the static document was built twice")
	}
	svc.calls.add("other", "thing")
	withCall, err := svc.servedAsyncAPI()
	if err != nil || withCall == first || !strings.Contains(string(withCall.json), `"call-other.thing"`) {
		t.Fatalf("document with a call: %v %.100s", err, withCall.json)
	}
	if again, _ := svc.servedAsyncAPI(); again != withCall {
		t.Error("the document with calls was built again without a new call")
	}
	if strings.Contains(string(first.json), "call-other.thing") {
		t.Error("the cached static document was changed")
	}

	h := svc.Handler()
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 100 {
			svc.calls.add("other", fmt.Sprintf("e-%d", i%40))
		}
	})
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
	final, _ := svc.AsyncAPI()
	if n := strings.Count(string(final), `"x-ferry-observed": true`); n != 41 {
		t.Errorf("%d observed calls in the document, want 41", n)
	}
}
