package ferry_test

import (
	"context"
	"testing"

	"github.com/ferrygo/ferry"
)

// TestReview3_OpenAPIMissesAnsweredErrors: docs/security.md says the
// document lists "every error status the operation can answer". A
// POST endpoint with a body is answered 408 request_timeout when its body
// arrives too slowly (TestSlowBody), every endpoint 431 when its headers
// exceed FERRY_MAX_HEADER_BYTES (TestOversizeHeaders), and any handler
// that calls another service 502 downstream_error at the error boundary
// (TestDownstreamErrorsStopAtTheBoundary); a NATS reply too large is 502
// response_too_large. None of them is listed: a generated client knows
// them only as "default".
func TestReview3_OpenAPIMissesAnsweredErrors(t *testing.T) {
	svc := ferry.MustNew("orders", "1.0.0", quiet)
	ferry.Handle(svc, ferry.Endpoint[NewOrderInput, Empty]{Service: "orders", Name: "create", Method: "POST", Path: "/orders"},
		func(context.Context, *NewOrderInput) (*Empty, error) { return &Empty{}, nil })
	doc := readOpenAPI(t, svc)
	op := doc.Paths["/orders"]["post"]
	for _, code := range []string{"408", "431", "502"} {
		if _, ok := op.Responses[code]; !ok {
			t.Errorf("POST /orders can answer %s but its operation does not list it (lists %v)", code, keys(op.Responses))
		}
	}
}
