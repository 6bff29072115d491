package ferry_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// R2Body is a small request body.
type R2Body struct {
	Name string `json:"name"`
}

// R2Input carries an R2Body.
type R2Input struct {
	Body R2Body
}

// Found by review: a per-endpoint MaxBodyBytes set by an Endpoint.Operation callback
// (the escape hatch the Endpoint docs name for it) is silently overwritten
// when a service without a configuration of its own is added to a host:
// Service.inherit calls recordingAdapter.setMaxBody, which resets every
// recorded operation's MaxBodyBytes to the host's limit. The endpoint then
// accepts bodies far past the limit its author set.
func TestOperationMaxBodySurvivesHostInheritance(t *testing.T) {
	svc := ferry.MustNew("limits", "1.0.0", quiet)
	ferry.Handle(svc, ferry.Endpoint[R2Input, Empty]{Service: "limits", Name: "small", Method: http.MethodPost, Path: "/small",
		Operation: func(op *huma.Operation) { op.MaxBodyBytes = 32 }},
		func(context.Context, *R2Input) (*Empty, error) { return &Empty{}, nil })
	body := `{"name":"` + strings.Repeat("x", 200) + `"}`
	if rec := do(t, svc.Handler(), "POST", "/small", body, nil); rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("before the host: status %d, want 413", rec.Code)
	}
	ferrytest.Start(t, svc)
	if rec := do(t, svc.Handler(), "POST", "/small", body, nil); rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("after ferrytest.Start (the service takes the host's configuration): a %d-byte body got status %d, want 413 (Operation set MaxBodyBytes 32)",
			len(body), rec.Code)
	}
}

// R2MapInput has a body with a map, left nil by a caller that sets none.
type R2MapInput struct {
	Body struct {
		Labels map[string]string `json:"labels"`
	}
}

var r2MapEndpoint = ferry.Endpoint[R2MapInput, Empty]{Service: "mapper", Name: "label", Method: http.MethodPost, Path: "/label"}

// Found by review: Ferry's own client cannot call an endpoint with the zero value
// of its input when the body has a map: Endpoint.Call encodes the nil map
// as "labels": null, and the server's schema wants an object, so a Go
// caller gets 422 "body.labels: expected object" for an input its own
// type allows (a nil slice passes). Same root cause as the nil map refused
// by Publish (review2_events_test.go).
func TestCallWithNilMapIsAccepted(t *testing.T) {
	svc := ferry.MustNew("mapper", "1.0.0", ferry.WithNATS(), quiet)
	ferry.Handle(svc, r2MapEndpoint, func(context.Context, *R2MapInput) (*Empty, error) { return &Empty{}, nil })
	h := ferrytest.Start(t, svc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := r2MapEndpoint.Call(ctx, h.Client, &R2MapInput{}); err != nil {
		t.Errorf("a call with the input's zero value was refused: %v", err)
	}
}
