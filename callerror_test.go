package ferry_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// answerInput selects what the callee answers.
type answerInput struct {
	Case string `path:"case"`
}

// answer is the callee's endpoint: it answers the problem its input names.
var answer = ferry.Endpoint[answerInput, Empty]{Service: "callee", Name: "answer", Method: http.MethodGet, Path: "/answer/{case}"}

// frontInput selects the downstream answer, and whether the front passes
// it on.
type frontInput struct {
	Case string `path:"case"`
	Pass bool   `query:"pass"`
}

// front calls the callee (or, for "absent", a service nobody serves) and
// returns the call's error, wrapped, or passed on.
var front = ferry.Endpoint[frontInput, Empty]{Service: "front", Name: "front", Method: http.MethodGet, Path: "/front/{case}"}

// newCallee serves answer: every case a problem with something that must
// not cross the boundary (a detail, an instance, field errors, a
// Retry-After).
func newCallee() *ferry.Service {
	svc := ferry.MustNew("callee", "1.0.0", ferry.WithoutHTTP(), ferry.WithNATS(), quiet)
	ferry.Handle(svc, answer, func(ctx context.Context, in *answerInput) (*Empty, error) {
		secret := &ferry.Error{Detail: "secret detail of the callee", Instance: "/internal/" + in.Case}
		switch in.Case {
		case "404", "401", "403", "409":
			_, _ = fmt.Sscan(in.Case, &secret.Status)
			return nil, secret
		case "422":
			secret.Status = http.StatusUnprocessableEntity
			secret.Errors = []*ferry.FieldError{{Location: "path.sku", Message: "secret internal field"}}
			return nil, secret
		case "500":
			return nil, errors.New("secret internal failure")
		case "503":
			secret.Status = http.StatusServiceUnavailable
			secret.Header = http.Header{"Retry-After": {"30"}}
			return nil, secret
		case "timeout":
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return &Empty{}, nil
	})
	return svc
}

// newFront serves front over HTTP and NATS.
func newFront(cfg ferry.Config) *ferry.Service {
	svc := ferry.MustNew("front", "1.0.0", ferry.WithConfig(cfg), ferry.WithNATS(), quiet)
	ferry.Handle(svc, front, func(ctx context.Context, in *frontInput) (*Empty, error) {
		var err error
		switch in.Case {
		case "absent":
			_, err = Absent.Call(ctx, svc.Client(), nil)
		case "timeout":
			_, err = answer.Call(ctx, svc.Client(), &answerInput{Case: in.Case}, ferry.CallTimeout(100*time.Millisecond))
		default:
			_, err = answer.Call(ctx, svc.Client(), &answerInput{Case: in.Case})
		}
		if err == nil {
			return &Empty{}, nil
		}
		if in.Pass {
			return nil, ferry.PassOn(err)
		}
		return nil, fmt.Errorf("front: %w", err)
	})
	return svc
}

// answered is what the outer caller got, from either transport.
type answered struct {
	status                      int
	code, requestID, retryAfter string
	fields                      int
	instance                    string
	raw                         string
}

// TestDownstreamErrorsStopAtTheBoundary: a handler that returns the
// failure of a downstream call answers its own caller 502, 503 or 504,
// with its own request ID and none of the callee's field errors, instance,
// detail or Retry-After, over HTTP and over NATS; passed on deliberately,
// the callee's problem crosses as it is.
func TestDownstreamErrorsStopAtTheBoundary(t *testing.T) {
	cfg := ferrytest.Config(t)
	frontSvc := newFront(cfg)
	h := ferrytest.StartWith(t, cfg, newCallee(), frontSvc)
	base := ferrytest.URL(t, frontSvc)

	transports := map[string]func(t *testing.T, c string, pass bool, id string) answered{
		"http": func(t *testing.T, c string, pass bool, id string) answered {
			target := "/front/" + c
			if pass {
				target += "?pass=true"
			}
			status, header, body := callHTTP(t, base, http.MethodGet, target, "", http.Header{ferry.HeaderRequestID: {id}})
			var p struct {
				Code      string              `json:"code"`
				RequestID string              `json:"request_id"`
				Instance  string              `json:"instance"`
				Errors    []*ferry.FieldError `json:"errors"`
			}
			if err := json.Unmarshal([]byte(body), &p); err != nil {
				t.Fatalf("%d %s: %v", status, body, err)
			}
			return answered{status, p.Code, p.RequestID, header.Get("Retry-After"), len(p.Errors), p.Instance, body}
		},
		"nats": func(t *testing.T, c string, pass bool, id string) answered {
			_, err := front.Call(context.Background(), h.Client, &frontInput{Case: c, Pass: pass}, ferry.CallHeader(ferry.HeaderRequestID, id))
			var ce *ferry.CallError
			if !errors.As(err, &ce) {
				t.Fatalf("the outer call failed with %v, not a *CallError", err)
			}
			p := ce.Problem()
			raw, _ := json.Marshal(p)
			if ce.Status != p.Status || ce.Code != p.Code {
				t.Errorf("CallError %d %s, its problem %d %s", ce.Status, ce.Code, p.Status, p.Code)
			}
			return answered{p.Status, p.Code, p.RequestID, p.Header.Get("Retry-After"), len(p.Errors), p.Instance, string(raw)}
		},
	}
	tests := []struct {
		c    string
		pass bool
		want answered
	}{
		{c: "404", want: answered{status: 502, code: "downstream_error"}},
		{c: "422", want: answered{status: 502, code: "downstream_error"}},
		{c: "401", want: answered{status: 502, code: "downstream_error"}},
		{c: "403", want: answered{status: 502, code: "downstream_error"}},
		{c: "409", want: answered{status: 502, code: "downstream_error"}},
		{c: "500", want: answered{status: 502, code: "downstream_error"}},
		{c: "503", want: answered{status: 503, code: "downstream_unavailable"}},
		{c: "timeout", want: answered{status: 504, code: "downstream_timeout"}},
		{c: "absent", want: answered{status: 503, code: "downstream_unavailable"}},
		// Passed on deliberately: the callee's problem as it is, with the
		// outer request's ID.
		{c: "404", pass: true, want: answered{status: 404, code: "not_found", instance: "/internal/404"}},
		{c: "422", pass: true, want: answered{status: 422, code: "unprocessable_entity", fields: 1, instance: "/internal/422"}},
		{c: "503", pass: true, want: answered{status: 503, code: "service_unavailable", retryAfter: "30", instance: "/internal/503"}},
		{c: "absent", pass: true, want: answered{status: 503, code: "no_responders"}},
	}
	for name, call := range transports {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/%s/pass=%v", name, tt.c, tt.pass), func(t *testing.T) {
				id := "outer-" + name + "-" + tt.c
				got := call(t, tt.c, tt.pass, id)
				want := tt.want
				want.requestID, want.raw = id, got.raw
				if got != want {
					t.Errorf("answered %+v\nwant       %+v", got, want)
				}
				if !tt.pass && strings.Contains(got.raw, "secret") {
					t.Errorf("the callee's detail crossed the boundary: %s", got.raw)
				}
			})
		}
	}
}

// TestCallErrorExposesTheCallee: the handler can read the callee's status
// and code, find its problem with errors.As, and match the sentinels of a
// call that got no answer.
func TestCallErrorExposesTheCallee(t *testing.T) {
	h := ferrytest.Start(t, newCallee())
	ctx := context.Background()

	_, err := answer.Call(ctx, h.Client, &answerInput{Case: "422"})
	var ce *ferry.CallError
	if !errors.As(err, &ce) || ce.Service != "callee" || ce.Endpoint != "answer" || ce.Status != 422 || ce.Code != "unprocessable_entity" {
		t.Fatalf("Call = %#v", err)
	}
	var fe *ferry.Error
	if !errors.As(err, &fe) || len(fe.Errors) != 1 || fe.Errors[0].Location != "path.sku" || fe.Instance != "/internal/422" {
		t.Errorf("the callee's problem: %#v", fe)
	}
	if p := ce.Problem(); p == fe || p.Status != fe.Status {
		t.Errorf("Problem() = %p %+v, want a copy of %p", p, p, fe)
	}
	if !strings.Contains(err.Error(), "call callee.answer") || !strings.Contains(err.Error(), "path.sku") {
		t.Errorf("the error text %q names neither the call nor the field", err)
	}
	if ferry.IsPermanent(err) {
		t.Error("a call's 422 is permanent")
	}
	if !ferry.IsPermanent(ferry.Permanent(err)) || !ferry.IsPermanent(ferry.PassOn(err)) {
		t.Error("a call's 422 wrapped with Permanent or passed on is not permanent")
	}

	_, err = Absent.Call(ctx, h.Client, nil)
	if !errors.As(err, &ce) || ce.Status != 503 || ce.Code != "no_responders" || !errors.Is(err, ferry.ErrNoResponders) {
		t.Errorf("no responders: %v", err)
	}

	_, err = answer.Call(ctx, h.Client, &answerInput{Case: "timeout"}, ferry.CallTimeout(50*time.Millisecond))
	if !errors.As(err, &ce) || ce.Status != 504 || !errors.Is(err, ferry.ErrCallTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timeout: %v", err)
	}

	// With statuses, only those are passed on; the others stay the call's.
	_, err = answer.Call(ctx, h.Client, &answerInput{Case: "422"})
	var passed *ferry.Error
	if got := ferry.PassOn(err, http.StatusConflict, http.StatusUnprocessableEntity); !errors.As(got, &passed) || errors.As(got, new(*ferry.CallError)) || passed.Status != 422 {
		t.Errorf("PassOn(422, 409, 422) = %v, want the callee's 422 problem", got)
	}
	if got := ferry.PassOn(err, http.StatusConflict); !errors.As(got, &ce) || got != err { //nolint:errorlint // identity is the point
		t.Errorf("PassOn(422, 409) = %v, want the call's error unchanged", got)
	}
	if ferry.PassOn(nil) != nil {
		t.Error("PassOn(nil) is not nil")
	}
	plain := errors.New("plain")
	if ferry.PassOn(plain) != plain { //nolint:errorlint // identity is the point
		t.Error("PassOn changed an error that is not a call's")
	}
}

// TestEventHandlerCallErrorIsRetried: an event handler whose downstream
// call got a 404 is retried until its deliveries run out, not
// dead-lettered at once; wrapped with Permanent, or passed on, it is.
func TestEventHandlerCallErrorIsRetried(t *testing.T) {
	cfg := ferrytest.Config(t)
	var runs counter
	sub := ferry.MustNew("subscriber", "1.0.0", ferry.WithConfig(cfg), ferry.WithoutHTTP(), quiet)
	ferry.Subscribe(sub, placed, "lookup", func(ctx context.Context, e *OrderPlaced) error {
		runs.add(e.OrderID)
		_, err := answer.Call(ctx, sub.Client(), &answerInput{Case: "404"})
		switch e.Note {
		case "permanent":
			return ferry.Permanent(err)
		case "pass-on":
			return ferry.PassOn(err)
		}
		return err
	}, fast...)
	h := ferrytest.StartWith(t, cfg, newCallee(), sub)

	tests := []struct {
		note string
		runs int
	}{
		{"as-is", 3}, // SubscribeMaxDeliveries(3) in fast
		{"permanent", 1},
		{"pass-on", 1},
	}
	for _, tt := range tests {
		publish(t, h, OrderPlaced{OrderID: tt.note, Quantity: 1, Note: tt.note})
	}
	ferrytest.Eventually(t, func() bool { return len(deadLetters(t, h, "lookup")) == len(tests) }, "every event is dead-lettered")
	byID := map[string]ferry.DeadLetter{}
	for _, dl := range deadLetters(t, h, "lookup") {
		var e OrderPlaced
		_ = json.Unmarshal(dl.Data, &e)
		byID[e.OrderID] = dl
	}
	for _, tt := range tests {
		t.Run(tt.note, func(t *testing.T) {
			if got := runs.get(tt.note); got != tt.runs {
				t.Errorf("the handler ran %d times, want %d", got, tt.runs)
			}
			dl := byID[tt.note]
			if dl.Deliveries != uint64(tt.runs) || !strings.Contains(dl.Error, "not_found") {
				t.Errorf("dead letter after %d deliveries with %q", dl.Deliveries, dl.Error)
			}
		})
	}
}

// TestCallWaitIsCapped: a call whose context lasts far longer than
// CallTimeoutMax (a job's, a step's) and whose answer never comes fails
// once the cap is over, not when the context ends.
func TestCallWaitIsCapped(t *testing.T) {
	cfg := ferrytest.Config(t)
	cfg.CallTimeoutMax = 300 * time.Millisecond
	caller := ferry.MustNew("caller", "1.0.0", ferry.WithConfig(cfg), ferry.WithNATS(), quiet)
	h := ferrytest.StartWith(t, cfg, caller)
	// A responder that takes the request and never answers: an answer lost
	// with a broker node looks the same to the caller.
	sub, err := h.NATS().Subscribe("ferry.silent.never", func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	never := ferry.Endpoint[struct{}, struct{}]{Service: "silent", Name: "never", Method: http.MethodGet, Path: "/never"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := never.Call(ctx, caller.Client(), nil); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, ferry.ErrCallTimeout) {
			t.Errorf("the call failed with %v, want a call timeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the call waited past its cap")
	}
}
