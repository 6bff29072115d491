package ferry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ferrygo/ferry"
)

// EchoInput covers every parameter location and a body.
type EchoInput struct {
	ID    int      `path:"id" minimum:"1"`
	Limit int      `query:"limit" minimum:"0" maximum:"100" default:"10"`
	Tags  []string `query:"tags"`
	Token string   `header:"X-Token" maxLength:"8"`
	Body  struct {
		Name string `json:"name" minLength:"1" maxLength:"20"`
	}
}

// EchoOutput echoes the input.
type EchoOutput struct {
	Trace string `header:"X-Trace"`
	Body  struct {
		ID    int      `json:"id"`
		Limit int      `json:"limit"`
		Tags  []string `json:"tags,omitempty"`
		Token string   `json:"token,omitempty"`
		Name  string   `json:"name"`
	}
}

// Empty is an input or output without fields.
type Empty struct{}

// errSoldOut is a shared *ferry.Error, as users declare them.
var errSoldOut = &ferry.Error{Status: http.StatusConflict, Code: "sold_out", Detail: "the item is sold out",
	Header: http.Header{"Retry-After": {"60"}}}

// slowCalls counts the runs of the slow endpoint.
var slowCalls atomic.Int32

// Absent is the contract of a service that never runs.
var Absent = ferry.Endpoint[Empty, Empty]{Service: "absent", Name: "nothing", Method: http.MethodGet, Path: "/nothing"}

// newTestService returns a service with endpoints that succeed, fail in
// every way, and panic; logs go to the returned buffer.
func newTestService(t testing.TB, opts ...ferry.Option) (*ferry.Service, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	opts = append([]ferry.Option{ferry.WithLogger(slog.New(slog.NewTextHandler(logs, nil)))}, opts...)
	svc, err := ferry.New("test", "1.0.0", opts...)
	if err != nil {
		t.Fatal(err)
	}
	ferry.Post(svc, "echo", "/echo/{id}", func(_ context.Context, in *EchoInput) (*EchoOutput, error) {
		out := &EchoOutput{Trace: "t-1"}
		out.Body.ID, out.Body.Limit, out.Body.Tags, out.Body.Token, out.Body.Name = in.ID, in.Limit, in.Tags, in.Token, in.Body.Name
		return out, nil
	})
	ferry.Get(svc, "fail-plain", "/fail/plain", func(context.Context, *Empty) (*Empty, error) {
		return nil, errors.New("database password is hunter2")
	})
	ferry.Get(svc, "fail-typed", "/fail/typed", func(context.Context, *Empty) (*Empty, error) {
		return nil, errSoldOut
	})
	ferry.Get(svc, "panic", "/panic", func(context.Context, *Empty) (*Empty, error) {
		panic("secret panic value")
	})
	ferry.Get(svc, "slow", "/slow", func(ctx context.Context, _ *Empty) (*Empty, error) {
		slowCalls.Add(1)
		<-ctx.Done() // holds until the call's deadline
		return nil, ctx.Err()
	})
	ferry.Get(svc, "relay", "/relay", func(ctx context.Context, _ *Empty) (*Empty, error) {
		return Absent.Call(ctx, svc.Client(), &Empty{})
	})
	return svc, logs
}

// syncBuffer is a bytes.Buffer safe for concurrent writers (loggers).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// do sends one request to h and returns the recorded response.
func do(t *testing.T, h http.Handler, method, target, body string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	for k, vs := range header {
		req.Header[k] = vs
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// problem decodes a problem details body.
func problem(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, body)
	}
	return p
}

func newLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
