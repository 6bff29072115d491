package ferry

import (
	"cmp"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// CallOption adjusts one call of an endpoint ([Endpoint.Call]); like every
// option of one operation it is named for it (CallHeader, CallTimeout).
type CallOption func(*callOptions)

type callOptions struct {
	header  http.Header
	timeout time.Duration
	err     error // the first invalid option
}

func newCallOptions(opts []CallOption) *callOptions {
	o := &callOptions{}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	return o
}

// setHeaders adds the options' headers to h.
func (o *callOptions) setHeaders(h http.Header) {
	for k, vs := range o.header {
		h[k] = vs
	}
}

// CallHeader sets a header of the call's request, for what the endpoint's
// input does not declare: credentials between services, a tenant. The
// callee reads it with [Request.Header] (it is not bound to the input).
// Ferry's own headers (Ferry-*, Nats-*, Content-Type) cannot be set: the
// call fails with an error. A later CallHeader of the same name replaces
// an earlier one; client middleware runs after the options and may change
// it.
func CallHeader(name, value string) CallOption {
	return func(o *callOptions) {
		if err := checkHeaderOption(name); err != nil {
			o.err = cmp.Or(o.err, err)
			return
		}
		if o.header == nil {
			o.header = http.Header{}
		}
		o.header.Set(name, value)
	}
}

// CallTimeout gives the call at most d, within ctx's deadline (it cannot
// extend it); d must be positive. A call without it, whose ctx has no
// deadline, gets [DefaultCallTimeout] (or the endpoint's Timeout and a
// second, when longer). The callee gets the remaining time
// as its budget.
func CallTimeout(d time.Duration) CallOption {
	return func(o *callOptions) {
		if d <= 0 {
			o.err = cmp.Or(o.err, errors.New("CallTimeout must be positive, got "+d.String()))
			return
		}
		o.timeout = d
	}
}

// checkHeaderOption refuses the headers Ferry sets itself.
func checkHeaderOption(name string) error {
	lower := strings.ToLower(name)
	switch {
	case name == "" || strings.ContainsAny(name, " :\r\n"):
		return errors.New("invalid header name " + strconv.Quote(name))
	case strings.HasPrefix(lower, "ferry-"), strings.HasPrefix(lower, "nats-"), lower == "content-type":
		return errors.New("the header " + name + " is Ferry's own and cannot be set")
	}
	return nil
}
