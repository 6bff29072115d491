package ferry

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/ferrygo/ferry/internal/asyncapi"
	"github.com/ferrygo/ferry/internal/naming"
)

// maxObservedCalls bounds how many endpoints a service's AsyncAPI
// document lists as observed calls; calls of further endpoints are not
// recorded.
const maxObservedCalls = 256

// callTarget is an endpoint a service was seen calling.
type callTarget struct{ service, endpoint string }

// callLog is the set of endpoints a service was seen calling from inside
// its handlers (endpoint calls, event deliveries, job runs and workflow
// steps): no service declares what it calls, so its AsyncAPI document
// shows what it did call since it started. The zero value is ready; it is
// safe for concurrent use, and a call already recorded costs one lock-free
// map read.
type callLog struct {
	seen sync.Map // callTarget → struct{}

	mu      sync.Mutex
	targets []callTarget // in the order seen; at most maxObservedCalls
	gen     uint64       // counts changes to targets

	docMu sync.Mutex
	doc   *observedDoc // the document last built with the calls
}

// observedDoc is a service's AsyncAPI document with its observed calls,
// built from one static document and one generation of the log.
type observedDoc struct {
	static *builtAsyncAPI
	gen    uint64
	built  *builtAsyncAPI
}

// noteCall records that the request ctx carries, if any, called endpoint
// of service.
func noteCall(ctx context.Context, service, endpoint string) {
	if r := RequestFromContext(ctx); r != nil && r.calls != nil {
		r.calls.add(service, endpoint)
	}
}

// add records a call of endpoint of service, unless the log is full or
// the names are invalid.
func (l *callLog) add(service, endpoint string) {
	t := callTarget{service, endpoint}
	if _, ok := l.seen.Load(t); ok {
		return
	}
	if naming.CheckServiceName(service) != nil || naming.CheckEndpointName(endpoint) != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.seen.Load(t); ok || len(l.targets) >= maxObservedCalls {
		return
	}
	l.targets = append(l.targets, t)
	l.seen.Store(t, struct{}{})
	l.gen++
}

// generation returns the log's generation and whether it holds any call.
func (l *callLog) generation() (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gen, len(l.targets) > 0
}

// calls returns the recorded calls, sorted, as the document lists them.
func (l *callLog) calls() []asyncapi.Call {
	l.mu.Lock()
	ts := slices.Clone(l.targets)
	l.mu.Unlock()
	slices.SortFunc(ts, func(a, b callTarget) int {
		if c := strings.Compare(a.service, b.service); c != 0 {
			return c
		}
		return strings.Compare(a.endpoint, b.endpoint)
	})
	out := make([]asyncapi.Call, len(ts))
	for i, t := range ts {
		out[i] = asyncapi.Call{Service: t.service, Name: t.endpoint, Subject: naming.EndpointSubject(t.service, t.endpoint)}
	}
	return out
}

// withCalls returns static with the log's calls added: static itself while
// there are none, and otherwise a document built once per static document
// and generation of the log.
func (l *callLog) withCalls(static *builtAsyncAPI) (*builtAsyncAPI, error) {
	gen, has := l.generation()
	if !has {
		return static, nil
	}
	l.docMu.Lock()
	defer l.docMu.Unlock()
	if d := l.doc; d != nil && d.static == static && d.gen == gen {
		return d.built, d.built.err
	}
	gen, _ = l.generation() // calls() reads this generation or a later one
	built := &builtAsyncAPI{}
	doc, err := static.doc.WithCalls(l.calls())
	if err == nil {
		built.json, err = doc.JSON()
	}
	if err == nil {
		built.yaml, err = doc.YAML()
	}
	built.err = err
	l.doc = &observedDoc{static: static, gen: gen, built: built}
	return built, err
}

// bodyType returns the Go type of an endpoint's request or response body
// as the AsyncAPI document shows it: t itself when it is the body as a
// whole (plain), its Body field's otherwise, and nil when there is none
// or it has no JSON schema (raw bytes, a stream's function).
func bodyType(t reflect.Type, plain, hasBody bool) reflect.Type {
	if !hasBody {
		return nil
	}
	if !plain {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return nil
		}
		f, ok := t.FieldByName("Body")
		if !ok {
			return nil
		}
		t = f.Type
	}
	e := t
	for e.Kind() == reflect.Pointer {
		e = e.Elem()
	}
	switch {
	case e.Kind() == reflect.Func, e.Kind() == reflect.Chan, e.Kind() == reflect.Interface,
		e.Kind() == reflect.Slice && e.Elem().Kind() == reflect.Uint8:
		return nil
	}
	return t
}
