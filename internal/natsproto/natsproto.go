// Package natsproto maps endpoint calls onto NATS messages and back: the
// request/reply envelope of docs/protocol.md. A request is a message on
// the endpoint's subject whose headers carry the path parameters
// (Ferry-Path), the query (Ferry-Query), the caller's time budget
// (Ferry-Timeout) and the HTTP-style headers, and whose payload is the body.
// A reply carries the HTTP status (Ferry-Status), the response headers and
// the body — byte for byte what HTTP answers.
package natsproto

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ferrygo/ferry/internal/envelope"
	"github.com/ferrygo/ferry/internal/naming"
)

// Canonical returns NATS headers (case-sensitive) as HTTP headers keyed
// canonically, so "ferry-path", "FERRY-PATH" and "Ferry-Path" are one. The
// two types share their representation: when every key is already
// canonical — as Ferry writes them — the map is used as it is, without a
// copy.
func Canonical(h nats.Header) http.Header {
	for k := range h {
		if textproto.CanonicalMIMEHeaderKey(k) != k {
			return recanonical(h)
		}
	}
	if h == nil {
		return http.Header{}
	}
	return http.Header(h)
}

func recanonical(h nats.Header) http.Header {
	out := make(http.Header, len(h))
	for k, vs := range h {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		out[ck] = append(out[ck], vs...)
	}
	return out
}

// ErrBadPath reports an unparsable Ferry-Path header.
var ErrBadPath = errors.New("natsproto: the Ferry-Path header is not form-encoded")

// DecodeRequest reads a request message into an envelope. Ferry-Path and
// Ferry-Query are consumed; every other header (Ferry-Timeout included)
// stays in the envelope's headers.
func DecodeRequest(m *nats.Msg) (*envelope.Request, error) {
	h := Canonical(m.Header)
	req := &envelope.Request{Header: h, Body: m.Data, RemoteAddr: "nats"}
	if raw := h.Get(naming.HeaderPath); raw != "" {
		values, err := url.ParseQuery(raw)
		if err != nil {
			return nil, ErrBadPath
		}
		req.Params = make(map[string]string, len(values))
		for k, vs := range values {
			req.Params[k] = vs[0]
		}
	}
	req.RawQuery = h.Get(naming.HeaderQuery)
	h.Del(naming.HeaderPath)
	h.Del(naming.HeaderQuery)
	return req, nil
}

// EncodeRequest builds the request message for subject from an envelope.
func EncodeRequest(subject string, req *envelope.Request) *nats.Msg {
	m := nats.NewMsg(subject)
	for k, vs := range req.Header {
		m.Header[k] = vs
	}
	if len(req.Params) > 0 {
		values := make(url.Values, len(req.Params))
		for k, v := range req.Params {
			values.Set(k, v)
		}
		m.Header.Set(naming.HeaderPath, values.Encode())
	}
	if req.RawQuery != "" {
		m.Header.Set(naming.HeaderQuery, req.RawQuery)
	}
	m.Data = req.Body
	return m
}

// ParseBudget reads a Ferry-Timeout value: given is false when raw is
// empty or not a whole number of milliseconds.
func ParseBudget(raw string) (d time.Duration, given bool) {
	if raw == "" {
		return 0, false
	}
	ms, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return 0, false
	}
	const maxMillis = int64(365 * 24 * time.Hour / time.Millisecond)
	return time.Duration(min(ms, maxMillis)) * time.Millisecond, true
}

// FormatBudget renders a budget for the Ferry-Timeout header.
func FormatBudget(d time.Duration) string {
	return strconv.FormatInt(d.Milliseconds(), 10)
}

// EncodeResponse builds the reply message of a response. Error replies
// (status ≥ 400) also carry the NATS service protocol's error headers, with
// the problem's detail, so generic NATS tooling sees a failure.
func EncodeResponse(resp *envelope.Response) *nats.Msg {
	m := &nats.Msg{Header: make(nats.Header, len(resp.Header)+3), Data: resp.Body.Bytes()}
	for k, vs := range resp.Header {
		m.Header[k] = vs
	}
	m.Header.Set(naming.HeaderStatus, strconv.Itoa(resp.Status))
	if resp.Status >= 400 {
		m.Header.Set(naming.HeaderServiceErrorCode, strconv.Itoa(resp.Status))
		m.Header.Set(naming.HeaderServiceError, ProblemDetail(resp.Body.Bytes(), resp.Status))
	}
	return m
}

// ProblemDetail returns the detail (or title) of a problem body, or the
// status text.
func ProblemDetail(body []byte, status int) string {
	var p struct{ Title, Detail string }
	if json.Unmarshal(body, &p) == nil {
		if p.Detail != "" {
			return p.Detail
		}
		if p.Title != "" {
			return p.Title
		}
	}
	return http.StatusText(status)
}

// ErrNoStatus reports a reply without a Ferry-Status header: not a Ferry
// responder.
var ErrNoStatus = errors.New("natsproto: the reply has no Ferry-Status header")

// DecodeResponse reads a reply message into a response.
func DecodeResponse(m *nats.Msg) (*envelope.Response, error) {
	h := Canonical(m.Header)
	status, err := strconv.Atoi(h.Get(naming.HeaderStatus))
	if err != nil || status < 100 || status > 999 {
		return nil, ErrNoStatus
	}
	h.Del(naming.HeaderStatus)
	resp := &envelope.Response{Status: status, Header: h}
	resp.Body.Write(m.Data)
	return resp, nil
}
