package natsproto

import (
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ferrygo/ferry/internal/envelope"
)

func TestDecodeRequestHeadersAnyCase(t *testing.T) {
	tests := []struct {
		name   string
		header nats.Header
	}{
		{"canonical", nats.Header{"Ferry-Path": {"item_id=42"}, "Ferry-Query": {"a=1"}, "X-Token": {"t"}}},
		{"lower", nats.Header{"ferry-path": {"item_id=42"}, "ferry-query": {"a=1"}, "x-token": {"t"}}},
		{"upper", nats.Header{"FERRY-PATH": {"item_id=42"}, "FERRY-QUERY": {"a=1"}, "X-TOKEN": {"t"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := DecodeRequest(&nats.Msg{Header: tt.header, Data: []byte("{}")})
			if err != nil {
				t.Fatal(err)
			}
			if req.Params["item_id"] != "42" || req.RawQuery != "a=1" || req.Header.Get("X-Token") != "t" || string(req.Body) != "{}" {
				t.Errorf("decoded %+v", req)
			}
			if req.Header.Get("Ferry-Path") != "" || req.Header.Get("Ferry-Query") != "" {
				t.Error("envelope headers leaked into the request headers")
			}
		})
	}
}

func TestRequestRoundTrip(t *testing.T) {
	in := &envelope.Request{Params: map[string]string{"a": "x y/z&=", "b": "ü"}, RawQuery: "q=1&q=2",
		Header: http.Header{"X-One": {"1", "2"}}, Body: []byte(`{"k":1}`)}
	out, err := DecodeRequest(EncodeRequest("s", in))
	if err != nil {
		t.Fatal(err)
	}
	if out.Params["a"] != in.Params["a"] || out.Params["b"] != "ü" || out.RawQuery != in.RawQuery ||
		len(out.Header["X-One"]) != 2 || string(out.Body) != string(in.Body) {
		t.Errorf("round trip: %+v", out)
	}
}

func TestResponseRoundTrip(t *testing.T) {
	resp := &envelope.Response{Status: 422, Header: http.Header{"Content-Type": {"application/problem+json"}}}
	resp.Body.WriteString(`{"status":422,"title":"Unprocessable Entity","detail":"validation failed"}`)
	m := EncodeResponse(resp)
	if m.Header.Get("Nats-Service-Error-Code") != "422" || m.Header.Get("Nats-Service-Error") != "validation failed" {
		t.Errorf("service error headers: %v", m.Header)
	}
	got, err := DecodeResponse(m)
	if err != nil || got.Status != 422 || got.Body.String() != resp.Body.String() || got.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("decoded %+v, %v", got, err)
	}
	if _, err := DecodeResponse(&nats.Msg{Data: []byte("hi")}); err != ErrNoStatus {
		t.Errorf("a reply without status: %v", err)
	}
}

func TestParseBudget(t *testing.T) {
	tests := []struct {
		raw   string
		want  time.Duration
		given bool
	}{
		{"", 0, false},
		{"abc", 0, false},
		{"1500", 1500 * time.Millisecond, true},
		{"0", 0, true},
		{"-5", -5 * time.Millisecond, true},
		{"99999999999999999", 365 * 24 * time.Hour, true},
	}
	for _, tt := range tests {
		got, given := ParseBudget(tt.raw)
		if got != tt.want || given != tt.given {
			t.Errorf("ParseBudget(%q) = %v, %v; want %v, %v", tt.raw, got, given, tt.want, tt.given)
		}
	}
}

// FuzzDecodeRequest: any headers and payload decode without panicking.
func FuzzDecodeRequest(f *testing.F) {
	f.Add("item_id=42", "a=1", "1500", []byte("{}"))
	f.Add("%zz", "%", "-1", []byte{0xff})
	f.Add("a=1&a=2&=", ";", "99999999999999999999999", []byte(nil))
	f.Fuzz(func(t *testing.T, path, query, timeout string, body []byte) {
		m := &nats.Msg{Header: nats.Header{"Ferry-Path": {path}, "ferry-query": {query}, "FERRY-TIMEOUT": {timeout}}, Data: body}
		req, err := DecodeRequest(m)
		if err != nil {
			return
		}
		_, _ = ParseBudget(req.Header.Get("Ferry-Timeout"))
		back, err := DecodeRequest(EncodeRequest("s", req))
		if err != nil || len(back.Params) != len(req.Params) || back.RawQuery != req.RawQuery {
			t.Fatalf("re-encoding changed the request: %+v → %+v (%v)", req, back, err)
		}
	})
}
