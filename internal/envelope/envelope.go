// Package envelope carries an endpoint call without HTTP: a request and a
// response that hold what an HTTP exchange would (method, path parameters,
// query, headers, body, status), and a huma.Context over them, so the same
// registered Huma operation — parameter binding, validation, the user's
// handler, error mapping — runs for calls that arrive in memory or over NATS.
package envelope

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/queryparam"
)

// Request is one call of an endpoint, as a transport delivered it.
type Request struct {
	// Params holds the path parameters by name (for /items/{item_id}:
	// "item_id").
	Params map[string]string
	// RawQuery is the URL-encoded query, without '?'.
	RawQuery string
	// Header holds the request headers, keyed canonically.
	Header http.Header
	// Body is the request body, if any.
	Body []byte
	// RemoteAddr identifies the caller, for logs.
	RemoteAddr string
}

// Response is what the operation answered.
type Response struct {
	Status int
	Header http.Header
	Body   bytes.Buffer
}

// ErrMultipart is returned for multipart forms, which no envelope carries.
var ErrMultipart = errors.New("envelope: multipart forms are not supported outside HTTP")

// Context is a huma.Context over a Request and a Response.
type Context struct {
	ctx       context.Context
	op        *huma.Operation
	req       *Request
	resp      *Response
	transport string
}

var _ huma.Context = (*Context)(nil)

// NewContext returns the huma.Context for running op on req, writing into
// resp; transport names the transport for middleware (see Transport).
func NewContext(ctx context.Context, op *huma.Operation, req *Request, resp *Response, transport string) *Context {
	if resp.Header == nil {
		resp.Header = http.Header{}
	}
	return &Context{ctx: ctx, op: op, req: req, resp: resp, transport: transport}
}

// Transport names the transport that carried the call.
func (c *Context) Transport() string { return c.transport }

// Operation implements huma.Context.
func (c *Context) Operation() *huma.Operation { return c.op }

// Context implements huma.Context.
func (c *Context) Context() context.Context { return c.ctx }

// TLS implements huma.Context; envelopes carry no TLS state.
func (c *Context) TLS() *tls.ConnectionState { return nil }

// Version implements huma.Context.
func (c *Context) Version() huma.ProtoVersion {
	return huma.ProtoVersion{Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
}

// Method implements huma.Context: the operation's method.
func (c *Context) Method() string { return c.op.Method }

// Host implements huma.Context.
func (c *Context) Host() string { return "" }

// RemoteAddr implements huma.Context.
func (c *Context) RemoteAddr() string { return c.req.RemoteAddr }

// URL implements huma.Context: the operation's path with the parameters
// filled in, and the query.
func (c *Context) URL() url.URL {
	return url.URL{Path: c.path(), RawQuery: c.req.RawQuery}
}

func (c *Context) path() string {
	p := c.op.Path
	for name, value := range c.req.Params {
		p = strings.ReplaceAll(p, "{"+name+"}", url.PathEscape(value))
	}
	return p
}

// Param implements huma.Context.
func (c *Context) Param(name string) string { return c.req.Params[name] }

// Query implements huma.Context.
func (c *Context) Query(name string) string { return queryparam.Get(c.req.RawQuery, name) }

// Header implements huma.Context; names match case-insensitively.
func (c *Context) Header(name string) string { return c.req.Header.Get(name) }

// EachHeader implements huma.Context.
func (c *Context) EachHeader(cb func(name, value string)) {
	for name, values := range c.req.Header {
		for _, v := range values {
			cb(name, v)
		}
	}
}

// BodyReader implements huma.Context.
func (c *Context) BodyReader() io.Reader { return bytes.NewReader(c.req.Body) }

// GetMultipartForm implements huma.Context; it always fails.
func (c *Context) GetMultipartForm() (*multipart.Form, error) { return nil, ErrMultipart }

// SetReadDeadline implements huma.Context; the body is already in memory.
func (c *Context) SetReadDeadline(time.Time) error { return nil }

// SetStatus implements huma.Context.
func (c *Context) SetStatus(code int) { c.resp.Status = code }

// Status implements huma.Context.
func (c *Context) Status() int { return c.resp.Status }

// SetHeader implements huma.Context.
func (c *Context) SetHeader(name, value string) { c.resp.Header.Set(name, value) }

// AppendHeader implements huma.Context.
func (c *Context) AppendHeader(name, value string) { c.resp.Header.Add(name, value) }

// BodyWriter implements huma.Context.
func (c *Context) BodyWriter() io.Writer { return &c.resp.Body }
