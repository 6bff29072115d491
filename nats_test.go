package ferry_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/items/itemsapi"
	"github.com/ferrygo/ferry/ferrytest"
	"github.com/ferrygo/ferry/internal/envelope"
	"github.com/ferrygo/ferry/internal/naming"
	"github.com/ferrygo/ferry/internal/natsproto"
)

// callNATS sends one raw request, as any NATS client would, and decodes
// the reply.
func callNATS(t *testing.T, nc *nats.Conn, service, endpoint string, req *envelope.Request) *envelope.Response {
	t.Helper()
	reply, err := nc.RequestMsg(natsproto.EncodeRequest(naming.EndpointSubject(service, endpoint), req), 10*time.Second)
	if err != nil {
		t.Fatalf("NATS request: %v", err)
	}
	resp, err := natsproto.DecodeResponse(reply)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// callHTTP sends the same request over real HTTP.
func callHTTP(t *testing.T, base, method, target string, body string, header http.Header) (int, http.Header, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+target, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestNATSParity(t *testing.T) {
	cfg := ferrytest.Config(t)
	cfg.MaxBody = 256
	svc, _ := newTestService(t, ferry.WithConfig(cfg), ferry.WithNATS())
	h := ferrytest.Start(t, svc)
	nc, base := h.NATS(), ferrytest.URL(t, svc)

	cases := []struct {
		name, endpoint, method, target string
		params                         map[string]string
		query, body                    string
		header                         http.Header
		status                         int
	}{
		{name: "success", endpoint: "echo", method: "POST", target: "/echo/3?limit=5&tags=a,b", params: map[string]string{"id": "3"}, query: "limit=5&tags=a,b",
			body: `{"name":"n"}`, header: http.Header{"X-Token": {"abc"}}, status: 200},
		{name: "422 path", endpoint: "echo", method: "POST", target: "/echo/x", params: map[string]string{"id": "x"}, body: `{"name":"n"}`, status: 422},
		{name: "422 query", endpoint: "echo", method: "POST", target: "/echo/3?limit=900", params: map[string]string{"id": "3"}, query: "limit=900", body: `{"name":"n"}`, status: 422},
		{name: "422 header", endpoint: "echo", method: "POST", target: "/echo/3", params: map[string]string{"id": "3"}, body: `{"name":"n"}`, header: http.Header{"X-Token": {"much-too-long"}}, status: 422},
		{name: "422 body", endpoint: "echo", method: "POST", target: "/echo/3", params: map[string]string{"id": "3"}, body: `{"name":""}`, status: 422},
		{name: "413 body too large", endpoint: "echo", method: "POST", target: "/echo/3", params: map[string]string{"id": "3"},
			body: `{"name":"` + strings.Repeat("n", 300) + `"}`, status: 413},
		{name: "handler error", endpoint: "fail-typed", method: "GET", target: "/fail/typed", status: 409},
		{name: "plain handler error", endpoint: "fail-plain", method: "GET", target: "/fail/plain", status: 500},
		{name: "panic", endpoint: "panic", method: "GET", target: "/panic", status: 500},
		{name: "deadline exceeded", endpoint: "slow", method: "GET", target: "/slow", header: http.Header{"Ferry-Timeout": {"50"}}, status: 504},
		{name: "deadline already spent", endpoint: "slow", method: "GET", target: "/slow", header: http.Header{"Ferry-Timeout": {"0"}}, status: 504},
		{name: "no responders downstream", endpoint: "relay", method: "GET", target: "/relay", status: 503},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			header := http.Header{ferry.HeaderRequestID: {"parity-2"}}
			for k, v := range tc.header {
				header[k] = v
			}
			if tc.body != "" {
				header.Set("Content-Type", "application/json")
			}
			slowBefore := slowCalls.Load()
			status, hh, body := callHTTP(t, base, tc.method, tc.target, tc.body, header)
			resp := callNATS(t, nc, "test", tc.endpoint, &envelope.Request{Params: tc.params, RawQuery: tc.query, Header: header.Clone(), Body: []byte(tc.body)})
			if status != tc.status || resp.Status != tc.status {
				t.Fatalf("status: HTTP %d, NATS %d, want %d\nHTTP: %s\nNATS: %s", status, resp.Status, tc.status, body, resp.Body.String())
			}
			if body != resp.Body.String() {
				t.Errorf("bodies differ\nHTTP: %s\nNATS: %s", body, resp.Body.String())
			}
			for _, k := range []string{"Content-Type", ferry.HeaderRequestID, "X-Trace", "Retry-After"} {
				if hh.Get(k) != resp.Header.Get(k) {
					t.Errorf("%s: HTTP %q, NATS %q", k, hh.Get(k), resp.Header.Get(k))
				}
			}
			if tc.status >= 400 && resp.Header.Get("Nats-Service-Error-Code") != strconv.Itoa(tc.status) {
				t.Errorf("Nats-Service-Error-Code %q", resp.Header.Get("Nats-Service-Error-Code"))
			}
			if tc.name == "deadline already spent" && slowCalls.Load() != slowBefore {
				t.Error("a call whose budget was spent ran the handler")
			}
		})
	}
}

func TestTypedClient(t *testing.T) {
	items := ferry.MustNew("items", "1.0.0", ferry.WithConfig(ferrytest.Config(t)), ferry.WithNATS(), quiet)
	var gotRequestID atomic.Value
	ferry.Handle(items, itemsapi.GetItem, func(ctx context.Context, in *itemsapi.GetItemInput) (*itemsapi.GetItemOutput, error) {
		gotRequestID.Store(ferry.RequestIDFromContext(ctx))
		if in.ItemID == 13 {
			return nil, &ferry.Error{Status: http.StatusNotFound, Code: "no_such_item", Detail: "item 13 does not exist"}
		}
		return &itemsapi.GetItemOutput{Body: itemsapi.Item{ItemID: in.ItemID}}, nil
	})
	h := ferrytest.Start(t, items)
	ctx := context.Background()

	out, err := itemsapi.GetItem.Call(ctx, h.Client, &itemsapi.GetItemInput{ItemID: 42})
	if err != nil || out.Body.ItemID != 42 {
		t.Fatalf("Call = %+v, %v", out, err)
	}
	_, err = itemsapi.GetItem.Call(ctx, h.Client, &itemsapi.GetItemInput{ItemID: 13})
	var fe *ferry.Error
	if !errors.As(err, &fe) || fe.Status != 404 || fe.Code != "no_such_item" || fe.Detail != "item 13 does not exist" || fe.RequestID == "" {
		t.Errorf("typed error = %#v", err)
	}

	// A deadline that passes before the answer: a 504 that is also
	// ErrCallTimeout and context.DeadlineExceeded.
	slow := ferry.MustNew("slowpoke", "1.0.0", ferry.WithoutHTTP(), ferry.WithNATS(), quiet)
	ferry.Handle(slow, ferry.Endpoint[Empty, Empty]{Service: "slowpoke", Name: "wait", Method: "GET", Path: "/wait"},
		func(ctx context.Context, _ *Empty) (*Empty, error) {
			<-ctx.Done()
			time.Sleep(50 * time.Millisecond)
			return nil, ctx.Err()
		})
	hs := ferrytest.Start(t, slow)
	tctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	_, err = ferry.Endpoint[Empty, Empty]{Service: "slowpoke", Name: "wait"}.Call(tctx, hs.Client, nil)
	if !errors.As(err, &fe) || fe.Status != 504 || !errors.Is(err, ferry.ErrCallTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timeout error = %v", err)
	}

	_, err = Absent.Call(ctx, h.Client, nil)
	if !errors.As(err, &fe) || fe.Status != 503 || fe.Code != "no_responders" || !errors.Is(err, ferry.ErrNoResponders) {
		t.Errorf("no responders error = %v", err)
	}
	if errors.Is(err, ferry.ErrCallTimeout) {
		t.Error("no responders is also a timeout")
	}

	// An Endpoint value without Service cannot be addressed: an *Error that
	// says what to set, not a plain error that hides it behind a 500.
	_, err = ferry.Endpoint[Empty, Empty]{Name: "get-item"}.Call(ctx, h.Client, nil)
	if !errors.As(err, &fe) || fe.Status != 500 || fe.Code != "endpoint_without_service" || !strings.Contains(fe.Detail, "set Endpoint.Service") {
		t.Errorf("endpoint without service error = %v", err)
	}
}

// TestRequestIDFollowsTheCall: a handler that calls another service passes
// its request ID along.
func TestRequestIDFollowsTheCall(t *testing.T) {
	cfg := ferrytest.Config(t)
	var seen atomic.Value
	items := ferry.MustNew("items", "1.0.0", ferry.WithConfig(cfg), ferry.WithNATS(), quiet)
	ferry.Handle(items, itemsapi.GetItem, func(ctx context.Context, in *itemsapi.GetItemInput) (*itemsapi.GetItemOutput, error) {
		seen.Store(ferry.RequestIDFromContext(ctx))
		return &itemsapi.GetItemOutput{Body: itemsapi.Item{ItemID: in.ItemID}}, nil
	})
	gateway := ferry.MustNew("gateway", "1.0.0", ferry.WithConfig(cfg), quiet)
	ferry.Get(gateway, "front", "/front/{id}", func(ctx context.Context, in *struct {
		ID int `path:"id"`
	}) (*itemsapi.GetItemOutput, error) {
		return itemsapi.GetItem.Call(ctx, gateway.Client(), &itemsapi.GetItemInput{ItemID: in.ID})
	})
	ferrytest.StartWith(t, cfg, items, gateway)
	status, _, body := callHTTP(t, ferrytest.URL(t, gateway), "GET", "/front/7", "", http.Header{ferry.HeaderRequestID: {"trace-me"}})
	if status != 200 || body != `{"item_id":7}` {
		t.Fatalf("%d %s", status, body)
	}
	if seen.Load() != "trace-me" {
		t.Errorf("the callee saw request ID %v", seen.Load())
	}
}

// TestConcurrentNATSCalls: 64 calls to one replica of an endpoint that
// holds each call are all inside the handler at once.
func TestConcurrentNATSCalls(t *testing.T) {
	const n = 64
	var inside, peak atomic.Int32
	release := make(chan struct{})
	svc := ferry.MustNew("holder", "1.0.0", ferry.WithoutHTTP(), ferry.WithNATS(), quiet)
	hold := ferry.Endpoint[Empty, Empty]{Service: "holder", Name: "hold", Method: "GET", Path: "/hold"}
	ferry.Handle(svc, hold, func(ctx context.Context, _ *Empty) (*Empty, error) {
		v := inside.Add(1)
		for p := peak.Load(); v > p && !peak.CompareAndSwap(p, v); p = peak.Load() {
		}
		defer inside.Add(-1)
		select {
		case <-release:
			return &Empty{}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	h := ferrytest.Start(t, svc)
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := hold.Call(context.Background(), h.Client, nil)
			errs <- err
		}()
	}
	ferrytest.Eventually(t, func() bool { return peak.Load() == n }, "%d calls are inside the handler (peak %d)", n, peak.Load())
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestReplicasShareCalls: two replicas in two hosts on one broker both
// serve calls; once one stops, the other serves them all.
func TestReplicasShareCalls(t *testing.T) {
	cfg := ferrytest.Config(t)
	cfg.NATSListen = "127.0.0.1:0"
	var served [2]atomic.Int32
	replica := func(i int) *ferry.Service {
		svc := ferry.MustNew("items", "1.0.0", ferry.WithoutHTTP(), ferry.WithNATS(), quiet)
		ferry.Handle(svc, itemsapi.GetItem, func(ctx context.Context, in *itemsapi.GetItemInput) (*itemsapi.GetItemOutput, error) {
			served[i].Add(1)
			return &itemsapi.GetItemOutput{Body: itemsapi.Item{ItemID: in.ItemID}}, nil
		})
		return svc
	}
	first := ferrytest.StartWith(t, cfg, replica(0))
	joinCfg := ferrytest.Config(t)
	joinCfg.NATSURL = first.BrokerURL()
	second := ferrytest.StartWith(t, joinCfg, replica(1))

	call := func() {
		t.Helper()
		if _, err := itemsapi.GetItem.Call(context.Background(), first.Client, &itemsapi.GetItemInput{ItemID: 1}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 200 && (served[0].Load() == 0 || served[1].Load() == 0); i++ {
		call()
	}
	if served[0].Load() == 0 || served[1].Load() == 0 {
		t.Fatalf("calls not shared: %d / %d", served[0].Load(), served[1].Load())
	}
	if err := second.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := served[1].Load()
	for range 50 {
		call()
	}
	if served[1].Load() != before {
		t.Errorf("a stopped replica served %d calls", served[1].Load()-before)
	}
}

func TestDataDirLocked(t *testing.T) {
	cfg := ferrytest.Config(t)
	ferrytest.StartWith(t, cfg, ferry.MustNew("one", "1.0.0", ferry.WithoutHTTP(), quiet))
	h, _ := ferry.NewHost(ferry.WithConfig(cfg), quiet)
	_ = h.Add(ferry.MustNew("two", "1.0.0", ferry.WithoutHTTP(), quiet))
	err := h.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "in use by another process") || !strings.Contains(err.Error(), "FERRY_NATS_LISTEN") {
		t.Fatalf("second host on a locked data dir: %v", err)
	}

	// When the holder listens, a second host on the same directory joins it.
	shared := ferrytest.Config(t)
	shared.NATSListen = "127.0.0.1:0"
	ferrytest.StartWith(t, shared, ferry.MustNew("three", "1.0.0", ferry.WithoutHTTP(), quiet))
	joined := ferrytest.StartWith(t, shared, ferry.MustNew("four", "1.0.0", ferry.WithoutHTTP(), quiet))
	if joined.BrokerURL() == "" {
		t.Error("the joining host has no broker URL")
	}
}

func TestBrokerListenPortTaken(t *testing.T) {
	cfg := ferrytest.Config(t)
	cfg.NATSListen = "127.0.0.1:0"
	first := ferrytest.StartWith(t, cfg, ferry.MustNew("one", "1.0.0", ferry.WithoutHTTP(), quiet))
	taken := strings.TrimPrefix(first.BrokerURL(), "nats://")
	again := ferrytest.Config(t)
	again.NATSListen = taken
	h, _ := ferry.NewHost(ferry.WithConfig(again), quiet)
	_ = h.Add(ferry.MustNew("two", "1.0.0", ferry.WithoutHTTP(), quiet))
	err := h.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "FERRY_NATS_LISTEN") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("broker on a taken port: %v", err)
	}
}

func TestNoBrokerMeansHTTPOnly(t *testing.T) {
	svc := ferry.MustNew("plain", "1.0.0", ferry.WithAddr("127.0.0.1:0"), quiet)
	h := startHost(t, nil, svc)
	if h.NATS() != nil || svc.Client() != nil {
		t.Error("a host without broker settings connected to a broker")
	}
}
