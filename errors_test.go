package ferry_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

func TestIsPermanent(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"plain error", errors.New("boom"), false},
		{"wrapped permanent", fmt.Errorf("op: %w", ferry.Permanent(errors.New("bad"))), true},
		{"404", ferry.NewError(http.StatusNotFound, "no"), true},
		{"422", ferry.NewError(http.StatusUnprocessableEntity, "bad"), true},
		{"429 retries", ferry.NewError(http.StatusTooManyRequests, "slow down"), false},
		{"408 retries", ferry.NewError(http.StatusRequestTimeout, "late"), false},
		{"503 retries", ferry.NewError(http.StatusServiceUnavailable, "later"), false},
		{"500 marked permanent", &ferry.Error{Status: 500, Permanent: true}, true},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ferry.IsPermanent(tt.err); got != tt.want {
				t.Errorf("IsPermanent(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
	if ferry.Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
}

func TestErrorText(t *testing.T) {
	tests := []struct {
		err  *ferry.Error
		want string
	}{
		{ferry.NewError(404, "no item 7"), "ferry: not_found: no item 7"},
		{&ferry.Error{Status: 409, Code: "sold_out", Detail: "gone"}, "ferry: sold_out: gone"},
		{&ferry.Error{}, "ferry: internal_server_error"},
		{&ferry.Error{Status: 422, Detail: "validation failed", Errors: []*ferry.FieldError{
			{Location: "path.id", Message: "invalid integer"}, {Message: "too many"}}},
			"ferry: unprocessable_entity: validation failed (path.id: invalid integer; too many)"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestStatusCode(t *testing.T) {
	for status, want := range map[int]string{
		404: "not_found", 422: "unprocessable_entity", 500: "internal_server_error",
		418: "im_a_teapot", 599: "status_599", 503: "service_unavailable",
	} {
		if got := ferry.StatusCode(status); got != want {
			t.Errorf("StatusCode(%d) = %q, want %q", status, got, want)
		}
	}
}

// TestBrokerUnavailableIs503: a handler's error that says the broker did
// not answer — a JetStream request unanswered, no responders, JetStream
// unavailable for the moment — is a 503 the caller may retry, not a 500.
func TestBrokerUnavailableIs503(t *testing.T) {
	svc := ferry.MustNew("flaky", "1.0.0", quiet)
	tests := map[string]error{
		"timeout":       fmt.Errorf("ferry: enqueue x: %w", nats.ErrTimeout),
		"no responders": nats.ErrNoResponders,
		"no stream":     jetstream.ErrNoStreamResponse,
		"js 503":        &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"},
	}
	for name, herr := range tests {
		ferry.Get(svc, "fail-"+strings.ReplaceAll(name, " ", "-"), "/"+strings.ReplaceAll(name, " ", "-"), func(context.Context, *struct{}) (*struct{}, error) { return nil, herr })
	}
	ferrytest.Start(t, svc)
	for name := range tests {
		resp, err := http.Get(ferrytest.URL(t, svc) + "/" + strings.ReplaceAll(name, " ", "-"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
			t.Errorf("%s: %d (Retry-After %q), want 503 with Retry-After", name, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
}
