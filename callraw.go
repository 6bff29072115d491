package ferry

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/ferrygo/ferry/internal/envelope"
	"github.com/ferrygo/ferry/internal/naming"
	"github.com/ferrygo/ferry/internal/natsproto"
)

// RawCall is a call of an endpoint known by its names only, without its
// Go types: what a tool that reads a service's documents makes (the ferry
// command's call). Its parts are those of the endpoint's HTTP request.
type RawCall struct {
	// Service and Endpoint name the endpoint.
	Service, Endpoint string
	// Params are the path parameters by name; Query the query parameters.
	Params map[string]string
	Query  url.Values
	// Header holds request headers, such as Authorization.
	Header http.Header
	// Body is the request body, JSON; nil for none.
	Body []byte
}

// RawReply is the successful answer to a [RawCall].
type RawReply struct {
	Status int
	Header http.Header
	Body   []byte
}

// CallRaw calls an endpoint over NATS as [Endpoint.Call] does — the same
// deadline (ctx's, or DefaultCallTimeout), trace context, client
// middleware and errors: a failed call is a [*CallError] carrying the
// callee's problem — and returns its answer's status, headers and body.
func CallRaw(ctx context.Context, c *Client, call RawCall) (*RawReply, error) {
	if err := naming.CheckServiceName(call.Service); err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Code: "invalid_call", Detail: err.Error()}
	}
	if err := naming.CheckEndpointName(call.Endpoint); err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Code: "invalid_call", Detail: err.Error()}
	}
	if c == nil || c.nc == nil {
		return nil, fmt.Errorf("ferry: call %s.%s: %w", call.Service, call.Endpoint, errNoClient)
	}
	req := &envelope.Request{Params: call.Params, RawQuery: call.Query.Encode(), Header: http.Header{}, Body: call.Body}
	for k, vs := range call.Header {
		req.Header[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
	if len(call.Body) > 0 && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCallTimeout)
		defer cancel()
	}
	ctx, end := startCallSpan(ctx, call.Service, call.Endpoint)
	var err error
	defer func() { end(err) }()
	deadline, _ := ctx.Deadline()
	req.Header.Set(naming.HeaderTimeout, natsproto.FormatBudget(time.Until(deadline)))
	propagate(ctx, req.Header.Set)
	resp, err := c.call(ctx, call.Service, call.Endpoint, naming.EndpointSubject(call.Service, call.Endpoint), req)
	if err != nil {
		return nil, err
	}
	return &RawReply{Status: resp.Status, Header: resp.Header, Body: bytes.Clone(resp.Body.Bytes())}, nil
}
