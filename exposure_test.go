package ferry_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// TestOnlyOptedInServicesAnswerOverNATS: a service that did not ask for
// NATS is not callable over it, even when a co-hosted service brought a
// broker; every service still answers discovery, with the endpoints it
// serves over NATS (possibly none).
func TestOnlyOptedInServicesAnswerOverNATS(t *testing.T) {
	cfg := ferrytest.Config(t)
	public := ferry.MustNew("public", "1.0.0", ferry.WithConfig(cfg), ferry.WithNATS(), quiet)
	ferry.Get(public, "ping", "/ping", func(context.Context, *Empty) (*Empty, error) { return &Empty{}, nil })
	private := ferry.MustNew("admin", "1.0.0", ferry.WithConfig(cfg), quiet)
	ferry.Get(private, "wipe", "/wipe", func(context.Context, *Empty) (*Empty, error) { return &Empty{}, nil })
	h := ferrytest.StartWith(t, cfg, public, private)

	ctx := context.Background()
	ping := ferry.Endpoint[Empty, Empty]{Service: "public", Name: "ping", Method: "GET", Path: "/ping"}
	if _, err := ping.Call(ctx, h.Client, &Empty{}); err != nil {
		t.Fatalf("the opted-in service: %v", err)
	}
	wipe := ferry.Endpoint[Empty, Empty]{Service: "admin", Name: "wipe", Method: "GET", Path: "/wipe"}
	if _, err := wipe.Call(ctx, h.Client, &Empty{}); !errors.Is(err, ferry.ErrNoResponders) {
		t.Fatalf("a service that did not opt in answered over NATS: %v", err)
	}
	msg, err := h.NATS().Request("$SRV.INFO.admin", nil, 2*time.Second)
	if err != nil {
		t.Fatalf("discovery of the HTTP-only service: %v", err)
	}
	var info struct {
		Name      string            `json:"name"`
		Endpoints []json.RawMessage `json:"endpoints"`
		Metadata  map[string]string `json:"metadata"`
	}
	if err := json.Unmarshal(msg.Data, &info); err != nil {
		t.Fatal(err)
	}
	if info.Name != "admin" || len(info.Endpoints) != 0 || !strings.Contains(info.Metadata["http"], "127.0.0.1:") {
		t.Errorf("discovery of the HTTP-only service: %s", msg.Data)
	}
}

// Big is an output larger than the broker's max payload.
type Big struct {
	Body string
}

// TestReplyLargerThanMaxPayload: the caller gets a structured error at
// once instead of waiting out its deadline, and the failure is counted.
func TestReplyLargerThanMaxPayload(t *testing.T) {
	cfg := ferrytest.Config(t)
	svc := ferry.MustNew("big", "1.0.0", ferry.WithConfig(cfg), ferry.WithNATS(), quiet)
	ferry.Get(svc, "huge", "/huge", func(context.Context, *Empty) (*Big, error) {
		return &Big{Body: strings.Repeat("x", 2<<20)}, nil
	})
	h := ferrytest.StartWith(t, cfg, svc)
	huge := ferry.Endpoint[Empty, Big]{Service: "big", Name: "huge", Method: "GET", Path: "/huge"}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := huge.Call(ctx, h.Client, &Empty{})
	var fe *ferry.Error
	if !errors.As(err, &fe) || fe.Status != http.StatusBadGateway || fe.Code != "response_too_large" {
		t.Fatalf("a reply over the max payload: %v", err)
	}
	var stats []byte
	ferrytest.Eventually(t, func() bool { // counted just after the reply
		msg, err := h.NATS().Request("$SRV.STATS.big", nil, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		stats = msg.Data
		return strings.Contains(string(stats), `"num_errors":1`)
	}, "the failure is counted in $SRV.STATS (%s)", stats)
}

// TestNoRespondersOnAPrivateBrokerSaysSo: a call that nobody answers, made
// from a process whose embedded broker no other process can reach, says
// so in the error.
func TestNoRespondersOnAPrivateBrokerSaysSo(t *testing.T) {
	caller := ferry.MustNew("caller", "1.0.0", ferry.WithoutHTTP(), ferry.WithNATS(), quiet)
	ferrytest.Start(t, caller)
	_, err := Absent.Call(context.Background(), caller.Client(), &Empty{})
	if !errors.Is(err, ferry.ErrNoResponders) || !strings.Contains(err.Error(), "FERRY_NATS_LISTEN") {
		t.Fatalf("no responders on a private broker: %v", err)
	}
}

// TestDownstreamFailureIsLogged: a handler that returns the failure of a
// downstream call (nobody serves it) answers 503, and the service's log
// has the callee's problem.
func TestDownstreamFailureIsLogged(t *testing.T) {
	logs := &syncBuffer{}
	svc := ferry.MustNew("relay", "1.0.0", ferry.WithLogger(newLogger(logs)), ferry.WithNATS())
	ferry.Get(svc, "relay", "/relay", func(ctx context.Context, _ *Empty) (*Empty, error) {
		return Absent.Call(ctx, svc.Client(), &Empty{})
	})
	ferrytest.Start(t, svc)
	resp, err := http.Get("http://" + svc.Addr().String() + "/relay")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want the downstream 503", resp.StatusCode)
	}
	if !strings.Contains(logs.String(), "a downstream call failed") || !strings.Contains(logs.String(), "call_code=no_responders") {
		t.Errorf("the downstream failure is not in the log:\n%s", logs)
	}
}
