package ferry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/internal/envelope"
)

// FuzzBinding feeds arbitrary path parameters, queries, header values and
// bodies to an endpoint over HTTP and in memory: neither may panic or
// answer anything but 2xx/4xx, every error is problem details, and both
// transports answer the same bytes.
func FuzzBinding(f *testing.F) {
	f.Add("42", "limit=5&tags=a,b", "tok", []byte(`{"name":"x"}`))
	f.Add("abc", "limit=-1", "", []byte(`{"name":""}`))
	f.Add("99999999999999999999", "limit=%zz", "much-too-long", []byte(`{`))
	f.Add("1", "tags=&tags=x&limit=1e3", "\x7f", []byte(`{"name":"a","extra":[1,2,{"deep":null}]}`))
	f.Add("-0", ";;&&==", "é", []byte(`[]`))
	f.Add("1/2", "limit=00000000000000000000001", "a b", []byte("\xff\xfe"))

	svc, _ := newTestService(f)
	h := svc.Handler()
	f.Fuzz(func(t *testing.T, id, rawQuery, token string, body []byte) {
		if id == "" || id == "." || id == ".." {
			return // another route, or a path HTTP cleans and redirects
		}
		header := http.Header{ferry.HeaderRequestID: {"fuzz"}, "Content-Type": {"application/json"}}
		if validHeaderValue(token) {
			header.Set("X-Token", token)
		}
		// Build the URL as a server parses a request line.
		u, err := url.ParseRequestURI("/echo/" + url.PathEscape(id) + "?" + rawQuery)
		if err != nil || u.RawQuery != rawQuery {
			return // not something a client can send
		}
		req := &http.Request{
			Method: http.MethodPost,
			URL:    u,
			Header: header.Clone(),
			Body:   http.NoBody,
			Host:   "example.com",
		}
		if len(body) > 0 {
			req.Body = httpBody(body)
			req.ContentLength = int64(len(body))
		}
		req = req.WithContext(context.Background())
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		resp := svc.Invoke(context.Background(), "echo", &envelope.Request{
			Params: map[string]string{"id": id}, RawQuery: rawQuery, Header: header, Body: body,
		})
		for _, got := range []struct {
			via    string
			status int
			body   []byte
			ct     string
		}{{"HTTP", rec.Code, rec.Body.Bytes(), rec.Header().Get("Content-Type")}, {"memory", resp.Status, resp.Body.Bytes(), resp.Header.Get("Content-Type")}} {
			if got.status >= 500 || got.status < 200 {
				t.Fatalf("%s answered %d: %s", got.via, got.status, got.body)
			}
			if got.status >= 400 && got.ct != "application/problem+json" {
				t.Fatalf("%s answered %d with Content-Type %q", got.via, got.status, got.ct)
			}
			if !json.Valid(got.body) {
				t.Fatalf("%s answered invalid JSON: %q", got.via, got.body)
			}
		}
		if rec.Code == http.StatusNotFound {
			return // HTTP routing refused the path (such as an escaped "/"); memory has no routing
		}
		// Huma reports several unknown properties in map order, so the
		// order of field errors may differ between two runs of one input.
		if rec.Code != resp.Status || normalizedProblem(rec.Body.Bytes()) != normalizedProblem(resp.Body.Bytes()) {
			t.Fatalf("transports differ: HTTP %d %s, memory %d %s", rec.Code, rec.Body, resp.Status, resp.Body.String())
		}
	})
}

// normalizedProblem returns body with its field errors sorted.
func normalizedProblem(body []byte) string {
	var p map[string]any
	if json.Unmarshal(body, &p) != nil {
		return string(body)
	}
	if errs, ok := p["errors"].([]any); ok {
		keys := make([]string, len(errs))
		for i, e := range errs {
			b, _ := json.Marshal(e)
			keys[i] = string(b)
		}
		slices.Sort(keys)
		p["errors"] = keys
	}
	out, _ := json.Marshal(p)
	return string(out)
}

func httpBody(b []byte) *bodyReader { return &bodyReader{bytes.NewReader(b)} }

type bodyReader struct{ *bytes.Reader }

func (bodyReader) Close() error { return nil }

func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
