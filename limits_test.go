package ferry_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/sse"
	"github.com/nats-io/nats.go"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
	"github.com/ferrygo/ferry/internal/envelope"
	"github.com/ferrygo/ferry/internal/telemetry"
)

// limitsService is a service to test limits on: hold blocks until a token
// on release (or its context ends), quick answers at once, echo reads a
// body, stuck and heeds have a 100 ms Timeout (stuck ignores its context
// until released, heeds returns when it ends), and stream is a streaming
// endpoint.
type limitsService struct {
	svc     *ferry.Service
	release chan struct{}
	inside  atomic.Int32 // calls inside hold or stuck
}

type okOutput struct {
	Body struct {
		OK bool `json:"ok"`
	}
}

type tick struct {
	N int `json:"n"`
}

type streamOutput struct {
	Body func(huma.Context)
}

func newLimitsService(t *testing.T, cfg ferry.Config, opts ...ferry.Option) *limitsService {
	t.Helper()
	ls := &limitsService{release: make(chan struct{}, 16)}
	svc := ferry.MustNew("limits", "1.0.0", append([]ferry.Option{ferry.WithConfig(cfg), ferry.WithNATS(), ferry.WithLogger(ferrytest.Logger(t))}, opts...)...)
	ls.svc = svc
	ok := func() *okOutput { o := &okOutput{}; o.Body.OK = true; return o }
	ferry.Get(svc, "hold", "/hold", func(ctx context.Context, _ *Empty) (*okOutput, error) {
		ls.inside.Add(1)
		defer ls.inside.Add(-1)
		select {
		case <-ls.release:
			return ok(), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	ferry.Get(svc, "quick", "/quick", func(context.Context, *Empty) (*okOutput, error) { return ok(), nil })
	ferry.Post(svc, "echo", "/echo", func(_ context.Context, in *struct {
		Body struct {
			Name string `json:"name"`
		}
	}) (*okOutput, error) {
		return ok(), nil
	})
	ferry.Handle(svc, ferry.Endpoint[Empty, okOutput]{Service: "limits", Name: "stuck", Method: http.MethodGet, Path: "/stuck", Timeout: 100 * time.Millisecond},
		func(context.Context, *Empty) (*okOutput, error) {
			ls.inside.Add(1)
			defer ls.inside.Add(-1)
			<-ls.release // ignores its context
			return ok(), nil
		})
	ferry.Handle(svc, ferry.Endpoint[Empty, okOutput]{Service: "limits", Name: "heeds", Method: http.MethodGet, Path: "/heeds", Timeout: 100 * time.Millisecond},
		func(ctx context.Context, _ *Empty) (*okOutput, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		})
	ferry.Handle(svc, ferry.Endpoint[Empty, streamOutput]{Service: "limits", Name: "stream", Method: http.MethodGet, Path: "/stream", Streaming: true, HTTPOnly: true},
		func(context.Context, *Empty) (*streamOutput, error) {
			return &streamOutput{Body: ticks}, nil
		})
	return ls
}

// ticks writes two lines with a pause longer than the write timeout the
// streaming tests set (200 ms) between them.
func ticks(hctx huma.Context) {
	hctx.SetHeader("Content-Type", "text/plain")
	w := hctx.BodyWriter()
	_, _ = io.WriteString(w, "tick 1\n")
	http.NewResponseController(w.(http.ResponseWriter)).Flush()
	time.Sleep(400 * time.Millisecond)
	_, _ = io.WriteString(w, "tick 2\n")
}

// transport calls an endpoint of the limits service one way.
type transport struct {
	name string
	call func(t *testing.T, endpoint, method, path string, header http.Header, body string) (int, http.Header, string)
}

func limitsTransports(base string, nc *nats.Conn) []transport {
	return []transport{
		{"HTTP", func(t *testing.T, _, method, path string, header http.Header, body string) (int, http.Header, string) {
			return callHTTP(t, base, method, path, body, header)
		}},
		{"NATS", func(t *testing.T, endpoint, _, path string, header http.Header, body string) (int, http.Header, string) {
			_, query, _ := strings.Cut(path, "?")
			resp := callNATS(t, nc, "limits", endpoint, &envelope.Request{Header: header.Clone(), RawQuery: query, Body: []byte(body)})
			return resp.Status, resp.Header, resp.Body.String()
		}},
	}
}

// limitProblem decodes a problem details body, failing the test unless it is
// one with the status and code.
func limitProblem(t *testing.T, header http.Header, body string, status int, code string) *ferry.Error {
	t.Helper()
	if ct := header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json; body %s", ct, body)
	}
	var fe ferry.Error
	if err := json.Unmarshal([]byte(body), &fe); err != nil {
		t.Fatalf("not a problem body: %v: %s", err, body)
	}
	if fe.Status != status || fe.Code != code || fe.RequestID == "" {
		t.Errorf("problem %+v, want status %d, code %s and a request ID", fe, status, code)
	}
	return &fe
}

func TestOversizeHeaders(t *testing.T) {
	cfg := ferrytest.Config(t)
	cfg.MaxHeaderBytes = 4 << 10
	ls := newLimitsService(t, cfg)
	h := ferrytest.StartWith(t, cfg, ls.svc)
	for _, tr := range limitsTransports(ferrytest.URL(t, ls.svc), h.NATS()) {
		for _, tc := range []struct {
			name   string
			size   int
			status int
		}{
			{"within the limit", 2 << 10, http.StatusOK},
			{"over the limit", 5 << 10, http.StatusRequestHeaderFieldsTooLarge},
			{"far over the limit", 512 << 10, http.StatusRequestHeaderFieldsTooLarge},
		} {
			t.Run(tr.name+"/"+tc.name, func(t *testing.T) {
				// In a header, or in the query (over HTTP on the request line,
				// over NATS in the Ferry-Query header).
				for _, where := range []string{"header", "query"} {
					header, path := http.Header{"X-Big": {strings.Repeat("b", tc.size)}}, "/quick"
					if where == "query" {
						header, path = http.Header{}, "/quick?big="+strings.Repeat("b", tc.size)
					}
					status, hh, body := tr.call(t, "quick", http.MethodGet, path, header, "")
					if status != tc.status {
						t.Fatalf("%s: status %d, want %d: %s", where, status, tc.status, body)
					}
					if status != http.StatusOK {
						limitProblem(t, hh, body, status, "request_header_fields_too_large")
					}
				}
			})
		}
	}
	// Past the limit and the room Ferry leaves for answering it (1 MiB
	// more), net/http answers by itself: 431 still, in plain text.
	status, _, _ := callHTTP(t, ferrytest.URL(t, ls.svc), http.MethodGet, "/quick", "", http.Header{"X-Big": {strings.Repeat("b", 1<<20+8<<10)}})
	if status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a header past net/http's own limit: status %d, want 431", status)
	}
}

// TestSlowHeadersCutOff: a client that sends its headers a line at a
// time, never finishing, has its connection closed by the read header
// timeout.
func TestSlowHeadersCutOff(t *testing.T) {
	cfg := ferrytest.Config(t)
	cfg.HTTPReadHeaderTimeout = 200 * time.Millisecond
	ls := newLimitsService(t, cfg)
	ferrytest.StartWith(t, cfg, ls.svc)
	conn, err := net.Dial("tcp", ls.svc.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /quick HTTP/1.1\r\nHost: limits\r\n"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() { // a header line every 50 ms, until the server hangs up
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := io.WriteString(conn, "X-Slow: 1\r\n"); err != nil {
					return
				}
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second)) // a generous bound
	_, err = io.Copy(io.Discard, conn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the connection of a client sending its headers slowly was still open after 20 s; want it closed by the 200 ms read header timeout")
	}
}

func TestOversizeBody(t *testing.T) {
	cfg := ferrytest.Config(t)
	cfg.MaxBody = 256
	ls := newLimitsService(t, cfg)
	h := ferrytest.StartWith(t, cfg, ls.svc)
	for _, tr := range limitsTransports(ferrytest.URL(t, ls.svc), h.NATS()) {
		t.Run(tr.name, func(t *testing.T) {
			header := http.Header{"Content-Type": {"application/json"}}
			status, hh, body := tr.call(t, "echo", http.MethodPost, "/echo", header, `{"name":"`+strings.Repeat("n", 300)+`"}`)
			if status != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d, want 413: %s", status, body)
			}
			limitProblem(t, hh, body, status, "request_entity_too_large")
		})
	}
}

// TestOverloaded: with a limit of one call, a call held inside the
// service makes the next one, over either transport, answered 503
// overloaded with Retry-After at once; once it is released, calls pass.
func TestOverloaded(t *testing.T) {
	cfg := ferrytest.Config(t)
	cfg.MaxConcurrent = 1
	ls := newLimitsService(t, cfg)
	h := ferrytest.StartWith(t, cfg, ls.svc)
	trs := limitsTransports(ferrytest.URL(t, ls.svc), h.NATS())
	for _, holder := range trs {
		for _, caller := range trs {
			t.Run(holder.name+" holds, "+caller.name+" calls", func(t *testing.T) {
				held := make(chan int, 1)
				go func() {
					status, _, _ := holder.call(t, "hold", http.MethodGet, "/hold", http.Header{}, "")
					held <- status
				}()
				ferrytest.Eventually(t, func() bool { return ls.inside.Load() == 1 }, "the held call is inside the service")
				status, hh, body := caller.call(t, "quick", http.MethodGet, "/quick", http.Header{}, "")
				if status != http.StatusServiceUnavailable {
					t.Fatalf("a call past the limit: status %d, want 503: %s", status, body)
				}
				limitProblem(t, hh, body, status, ferry.CodeOverloaded)
				if hh.Get("Retry-After") != "1" {
					t.Errorf("Retry-After %q, want 1", hh.Get("Retry-After"))
				}
				ls.release <- struct{}{}
				if status := <-held; status != http.StatusOK {
					t.Errorf("the held call: status %d", status)
				}
				// The slot is released once the held call's response is
				// written, which its caller may see first.
				ferrytest.Eventually(t, func() bool {
					status, _, _ := caller.call(t, "quick", http.MethodGet, "/quick", http.Header{}, "")
					return status == http.StatusOK
				}, "a call after the release succeeds")
			})
		}
	}
}

// TestNATSPendingBudget: a service whose NATS workers are all busy and
// whose pending budget is full answers the next NATS call 503 overloaded
// at once, while HTTP, which does not use them, still serves.
func TestNATSPendingBudget(t *testing.T) {
	cfg := ferrytest.Config(t)
	cfg.NATSWorkers = 1
	cfg.NATSPendingBytes = 1
	ls := newLimitsService(t, cfg)
	h := ferrytest.StartWith(t, cfg, ls.svc)
	trs := limitsTransports(ferrytest.URL(t, ls.svc), h.NATS())
	httpCall, natsCall := trs[0], trs[1]
	held := make(chan int, 1)
	go func() {
		status, _, _ := natsCall.call(t, "hold", http.MethodGet, "/hold", http.Header{}, "")
		held <- status
	}()
	ferrytest.Eventually(t, func() bool { return ls.inside.Load() == 1 }, "the held call is inside the service")

	status, hh, body := natsCall.call(t, "quick", http.MethodGet, "/quick", http.Header{ferry.HeaderRequestID: {"over-budget"}}, "")
	if status != http.StatusServiceUnavailable {
		t.Fatalf("a NATS call with every worker busy and no budget left: status %d, want 503: %s", status, body)
	}
	if fe := limitProblem(t, hh, body, status, ferry.CodeOverloaded); fe.RequestID != "over-budget" || !strings.Contains(fe.Detail, "FERRY_NATS_WORKERS") {
		t.Errorf("problem %+v: want the caller's request ID and a detail naming the setting", fe)
	}
	if hh.Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q, want 1", hh.Get("Retry-After"))
	}
	if status, _, body := httpCall.call(t, "quick", http.MethodGet, "/quick", http.Header{}, ""); status != http.StatusOK {
		t.Errorf("HTTP while the NATS workers are busy: status %d: %s", status, body)
	}
	ls.release <- struct{}{}
	if status := <-held; status != http.StatusOK {
		t.Errorf("the held call: status %d", status)
	}
	// The worker is free once the held call's reply is sent, which its
	// caller may see first.
	ferrytest.Eventually(t, func() bool {
		status, _, _ := natsCall.call(t, "quick", http.MethodGet, "/quick", http.Header{}, "")
		return status == http.StatusOK
	}, "a NATS call once the worker is free succeeds")
}

// TestEndpointTimeout: an endpoint's Timeout answers 504
// deadline_exceeded over either transport, whether the handler heeds its
// context or not; one that does not keeps its place in the concurrency
// limit until it returns.
func TestEndpointTimeout(t *testing.T) {
	cfg := ferrytest.Config(t)
	cfg.MaxConcurrent = 1
	ls := newLimitsService(t, cfg)
	h := ferrytest.StartWith(t, cfg, ls.svc)
	for _, tr := range limitsTransports(ferrytest.URL(t, ls.svc), h.NATS()) {
		t.Run(tr.name+"/heeds its context", func(t *testing.T) {
			status, hh, body := tr.call(t, "heeds", http.MethodGet, "/heeds", http.Header{}, "")
			if status != http.StatusGatewayTimeout {
				t.Fatalf("status %d, want 504: %s", status, body)
			}
			if fe := limitProblem(t, hh, body, status, "deadline_exceeded"); !strings.Contains(fe.Detail, "timeout of 100ms") {
				t.Errorf("detail %q does not name the timeout", fe.Detail)
			}
			ferrytest.Eventually(t, func() bool {
				status, _, _ := tr.call(t, "quick", http.MethodGet, "/quick", http.Header{}, "")
				return status == http.StatusOK
			}, "the next call passes")
		})
		t.Run(tr.name+"/ignores its context", func(t *testing.T) {
			status, hh, body := tr.call(t, "stuck", http.MethodGet, "/stuck", http.Header{}, "")
			if status != http.StatusGatewayTimeout {
				t.Fatalf("status %d, want 504: %s", status, body)
			}
			limitProblem(t, hh, body, status, "deadline_exceeded")
			if ls.inside.Load() != 1 {
				t.Fatal("the handler is no longer running: the test cannot tell whether the call was answered without waiting for it")
			}
			status, hh, body = tr.call(t, "quick", http.MethodGet, "/quick", http.Header{}, "")
			if status != http.StatusServiceUnavailable {
				t.Fatalf("a call while the timed-out handler still runs: status %d, want 503 (it keeps its slot): %s", status, body)
			}
			limitProblem(t, hh, body, status, ferry.CodeOverloaded)
			ls.release <- struct{}{}
			ferrytest.Eventually(t, func() bool {
				status, _, _ := tr.call(t, "quick", http.MethodGet, "/quick", http.Header{}, "")
				return status == http.StatusOK
			}, "a call passes once the timed-out handler has returned")
		})
	}
}

// TestStreaming: a streaming endpoint is neither counted by the
// concurrency limit nor cut by the write timeout.
func TestStreaming(t *testing.T) {
	cfg := ferrytest.Config(t)
	cfg.MaxConcurrent = 1
	cfg.HTTPWriteTimeout = 200 * time.Millisecond
	ls := newLimitsService(t, cfg)
	// Huma operations registered on svc.API(), with and without Streaming.
	for _, declared := range []bool{true, false} {
		op := huma.Operation{OperationID: "api-stream", Method: http.MethodGet, Path: "/api-stream"}
		if !declared {
			op.OperationID, op.Path = "api-stream-undeclared", "/api-stream-undeclared"
		} else {
			ferry.Streaming(&op)
		}
		huma.Register(ls.svc.API(), op, func(context.Context, *Empty) (*streamOutput, error) {
			return &streamOutput{Body: ticks}, nil
		})
	}
	// And Huma's Server-Sent Events, declared Streaming the same way.
	sseOp := huma.Operation{OperationID: "sse", Method: http.MethodGet, Path: "/sse"}
	ferry.Streaming(&sseOp)
	sse.Register(ls.svc.API(), sseOp, map[string]any{"tick": tick{}}, func(_ context.Context, _ *Empty, send sse.Sender) {
		_ = send.Data(tick{N: 1})
		time.Sleep(400 * time.Millisecond)
		_ = send.Data(tick{N: 2})
	})
	h := ferrytest.StartWith(t, cfg, ls.svc)
	base := ferrytest.URL(t, ls.svc)

	get := func(path string) (int, string, error) {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(bufio.NewReader(resp.Body))
		return resp.StatusCode, string(b), err
	}

	held := make(chan int, 1)
	go func() {
		status, _, _ := limitsTransports(base, h.NATS())[1].call(t, "hold", http.MethodGet, "/hold", http.Header{}, "")
		held <- status
	}()
	ferrytest.Eventually(t, func() bool { return ls.inside.Load() == 1 }, "a held call fills the limit")
	for _, path := range []string{"/stream", "/api-stream"} {
		status, body, err := get(path)
		if err != nil || status != http.StatusOK || body != "tick 1\ntick 2\n" {
			t.Errorf("GET %s, with the limit full and past the write timeout: %d %q %v; want 200 and both ticks", path, status, body, err)
		}
	}
	if status, body, err := get("/sse"); err != nil || status != http.StatusOK || body != "event: tick\ndata: {\"n\":1}\n\nevent: tick\ndata: {\"n\":2}\n\n" {
		t.Errorf("GET /sse: %d %q %v; want 200 and both events", status, body, err)
	}
	if _, body, err := get("/api-stream-undeclared"); err == nil && body == "tick 1\ntick 2\n" {
		t.Error("a stream not declared Streaming outlived the write timeout: the test shows nothing")
	}
	status, _, _ := callHTTP(t, base, http.MethodGet, "/quick", "", http.Header{})
	if status != http.StatusServiceUnavailable {
		t.Errorf("a plain call with the limit full: %d, want 503", status)
	}
	ls.release <- struct{}{}
	<-held
}

// TestSlowBody: an endpoint whose body arrives slower than the read
// timeout answers 408 as problem details.
func TestSlowBody(t *testing.T) {
	cfg := ferrytest.Config(t)
	cfg.HTTPReadTimeout = 200 * time.Millisecond
	ls := newLimitsService(t, cfg)
	ferrytest.StartWith(t, cfg, ls.svc)
	conn, err := net.Dial("tcp", ls.svc.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /echo HTTP/1.1\r\nHost: limits\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a body that never arrives: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("status %d, want 408: %s", resp.StatusCode, body)
	}
	limitProblem(t, resp.Header, string(body), http.StatusRequestTimeout, "request_timeout")
}

func TestLimitSettings(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    ferry.Config
		wantErr string
	}{
		{name: "flags", args: []string{"-http-read-header-timeout", "2s", "-http-read-timeout", "20s", "-http-write-timeout", "30s",
			"-http-idle-timeout", "1m", "-max-header-bytes", "16KiB", "-max-concurrent", "64", "-nats-workers", "128", "-nats-pending-bytes", "8MiB"},
			want: ferry.Config{HTTPReadHeaderTimeout: 2 * time.Second, HTTPReadTimeout: 20 * time.Second, HTTPWriteTimeout: 30 * time.Second,
				HTTPIdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10, MaxConcurrent: 64, NATSWorkers: 128, NATSPendingBytes: 8 << 20}},
		{name: "environment", env: map[string]string{"FERRY_MAX_CONCURRENT": "10", "FERRY_HTTP_WRITE_TIMEOUT": "5s"},
			want: ferry.Config{MaxConcurrent: 10, HTTPWriteTimeout: 5 * time.Second}},
		{name: "header limit over 1 MiB", env: map[string]string{"FERRY_MAX_HEADER_BYTES": "2MiB"}, wantErr: "FERRY_MAX_HEADER_BYTES"},
		{name: "no concurrency", args: []string{"-max-concurrent", "0"}, wantErr: "max-concurrent"},
		{name: "negative timeout", env: map[string]string{"FERRY_HTTP_READ_TIMEOUT": "-1s"}, wantErr: "FERRY_HTTP_READ_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			got, err := ferry.LoadConfigEnv(fs, tt.args, tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	// The same checks for a Config set in code.
	for _, cfg := range []ferry.Config{{MaxHeaderBytes: 2 << 20}, {MaxConcurrent: -1}, {HTTPWriteTimeout: -time.Second}, {NATSPendingBytes: -1}} {
		if _, err := ferry.New("a", "1.0.0", ferry.WithConfig(cfg)); err == nil {
			t.Errorf("WithConfig(%+v) accepted", cfg)
		}
	}
}

// TestLimitRefusalsAreObserved: a 431 and both kinds of 503 overloaded
// (the concurrency limit, and the NATS pool with its budget full) reach
// the service's observer, over each transport.
func TestLimitRefusalsAreObserved(t *testing.T) {
	cfg := ferrytest.Config(t)
	cfg.MaxHeaderBytes = 4 << 10
	cfg.MaxConcurrent = 1
	cfg.NATSWorkers = 1
	cfg.NATSPendingBytes = 1
	rec := &outcomes{}
	ls := newLimitsService(t, cfg, ferry.ObserveWith(rec))
	h := ferrytest.StartWith(t, cfg, ls.svc)
	trs := limitsTransports(ferrytest.URL(t, ls.svc), h.NATS())
	for _, tr := range trs {
		if status, _, _ := tr.call(t, "quick", http.MethodGet, "/quick", http.Header{"X-Big": {strings.Repeat("b", 5<<10)}}, ""); status != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("%s: oversize header: %d", tr.name, status)
		}
	}
	held := make(chan int, 1)
	go func() {
		// The one NATS worker answers a call before its observers end it:
		// a call sent at once may still find it busy, and be refused.
		status := http.StatusServiceUnavailable
		for range 100 {
			if status, _, _ = trs[1].call(t, "hold", http.MethodGet, "/hold", http.Header{}, ""); status != http.StatusServiceUnavailable {
				break
			}
		}
		held <- status
	}()
	ferrytest.Eventually(t, func() bool { return ls.inside.Load() == 1 }, "the held call is inside the service")
	for _, tr := range trs { // HTTP: the limit; NATS: the worker pool
		if status, _, _ := tr.call(t, "quick", http.MethodGet, "/quick", http.Header{}, ""); status != http.StatusServiceUnavailable {
			t.Fatalf("%s: a call with the service full: %d", tr.name, status)
		}
	}
	ls.release <- struct{}{}
	<-held

	for _, tr := range trs {
		ferrytest.Eventually(t, func() bool {
			return len(rec.find(func(o telemetry.Outcome) bool {
				return o.Transport == strings.ToLower(tr.name) && o.Status == http.StatusRequestHeaderFieldsTooLarge && o.Code == "request_header_fields_too_large"
			})) == 1
		}, "%s: the 431 is observed", tr.name)
		ferrytest.Eventually(t, func() bool {
			return len(rec.find(func(o telemetry.Outcome) bool {
				return o.Transport == strings.ToLower(tr.name) && o.Status == http.StatusServiceUnavailable && o.Code == ferry.CodeOverloaded && o.Name == "quick"
			})) == 1
		}, "%s: the 503 overloaded is observed", tr.name)
	}
}
