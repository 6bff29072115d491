package ferry_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/ferrygo/ferry"
)

// TestCallChecksTheEndpointValue: a call through an Endpoint value that
// cannot be addressed fails with an *Error that says what to set, before
// anything is sent.
func TestCallChecksTheEndpointValue(t *testing.T) {
	tests := []struct {
		name   string
		client *ferry.Client
		ep     ferry.Endpoint[Empty, Empty]
		code   string
		detail []string
	}{
		{"no Service and no client", nil, ferry.Endpoint[Empty, Empty]{Name: "get-item"},
			"endpoint_without_service", []string{"get-item", "set Endpoint.Service"}},
		{"HTTP only", nil, ferry.Endpoint[Empty, Empty]{Service: "items", Name: "stream", HTTPOnly: true},
			"endpoint_http_only", []string{"items.stream", "over HTTP"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.ep.Call(context.Background(), tt.client, nil)
			var fe *ferry.Error
			if !errors.As(err, &fe) || fe.GetStatus() != http.StatusInternalServerError || fe.Code != tt.code {
				t.Fatalf("Call = %v, want a 500 *Error with code %s", err, tt.code)
			}
			for _, w := range tt.detail {
				if !strings.Contains(fe.Detail, w) {
					t.Errorf("detail %q lacks %q", fe.Detail, w)
				}
			}
		})
	}
}

// TestCallWithoutClient: a call without a client says how to get one.
func TestCallWithoutClient(t *testing.T) {
	ep := ferry.Endpoint[Empty, Empty]{Service: "items", Name: "get-item"}
	for _, c := range []*ferry.Client{nil, ferry.NewClient(nil)} {
		_, err := ep.Call(context.Background(), c, nil)
		if err == nil {
			t.Fatal("a call without a client succeeded")
		}
		for _, want := range []string{"ferry: call items.get-item: no client", "ferry.WithNATS()", "svc.Client() inside a handler", "nil before the host starts"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q lacks %q", err, want)
			}
		}
	}
}
