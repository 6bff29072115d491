package ferry_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ferrygo/ferry"
)

// CallSeen is what the probe endpoint answers: what its call looked like
// from inside.
type CallSeen struct {
	Body struct {
		Budget    time.Duration `json:"budget_ns"` // left of the deadline, 0: none
		Principal string        `json:"principal"`
		RequestID string        `json:"request_id"`
	}
}

var probeEP = ferry.Endpoint[struct{}, CallSeen]{Service: "probe", Name: "probe", Method: http.MethodPost, Path: "/probe", Auth: ferry.Auth{Public: true}}

// probeCallTimeoutMax is the probe service's cap on a call's budget.
const probeCallTimeoutMax = 5 * time.Second

// newProbeService is a service with one public endpoint that answers how
// it sees its call, and one API key ("ops-key").
func newProbeService(t testing.TB, opts ...ferry.Option) *ferry.Service {
	t.Helper()
	svc := ferry.MustNew("probe", "1.0.0", append([]ferry.Option{quiet, ferry.WithConfig(ferry.Config{CallTimeoutMax: probeCallTimeoutMax}),
		ferry.WithAPIKeys(ferry.APIKey{Name: "ops", Hash: ferry.HashAPIKey("ops-key")})}, opts...)...)
	ferry.Handle(svc, probeEP, func(ctx context.Context, _ *struct{}) (*CallSeen, error) {
		out := &CallSeen{}
		if dl, ok := ctx.Deadline(); ok {
			out.Body.Budget = max(time.Until(dl), 1)
		}
		if p := ferry.PrincipalFromContext(ctx); p != nil {
			out.Body.Principal = p.Subject
		}
		if r := ferry.RequestFromContext(ctx); r != nil {
			out.Body.RequestID = r.ID
		}
		return out, nil
	})
	return svc
}

// FuzzCallHeaders feeds arbitrary headers — forged Ferry-* headers, a
// time budget, a request ID, credentials, trace context — to an endpoint
// over HTTP and over NATS (decoded from a NATS message as the NATS
// dispatch does, without a broker). Neither may panic or answer 5xx (but
// a spent budget's 504); a caller cannot raise its budget past the cap,
// name a principal without a valid key, or make the request ID anything
// but a short printable token.
func FuzzCallHeaders(f *testing.F) {
	f.Add("Ferry-Timeout", "999999999999", "Ferry-Request-Id", "r-1", "X-Api-Key", "ops-key", []byte(`{}`))
	f.Add("Ferry-Principal", "root", "Ferry-Subject", "admin", "Authorization", "Bearer ops-key", []byte(nil))
	f.Add("ferry-timeout", "-5", "Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "Tracestate", "k=v", []byte(`[`))
	f.Add("Ferry-Path", "a=%zz", "Ferry-Query", "x=1&&", "Ferry-Request-Id", strings.Repeat("r", 200), []byte(`{"a":1}`))
	f.Add("Ferry-Job-Id", "abc", "Ferry-Job-Replay", "1", "Nats-Msg-Id", "x", []byte(`{}`))
	f.Add("Ferry-Timeout", "1e400", "Content-Type", "text/plain", "X-Api-Key", "ops-key\x00", []byte("\xff"))

	svc := newProbeService(f)
	h := svc.Handler()
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3 string, body []byte) {
		header := http.Header{}
		for _, kv := range [][2]string{{k1, v1}, {k2, v2}, {k3, v3}} {
			if kv[0] != "" && validHeaderName(kv[0]) && validHeaderValue(kv[1]) {
				header.Add(kv[0], kv[1])
			}
		}
		keyGiven := false
		for _, vs := range header {
			for _, v := range vs {
				keyGiven = keyGiven || strings.Contains(v, "ops-key")
			}
		}
		budgetGiven := header.Get("Ferry-Timeout") != ""

		req := httptest.NewRequest(http.MethodPost, "/probe", strings.NewReader(string(body)))
		for k, vs := range header {
			req.Header[k] = vs
		}
		if req.Header.Get("Content-Type") == "" {
			req.Header.Set("Content-Type", "application/json")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		m := nats.NewMsg("ferry.probe.probe")
		for k, vs := range header {
			m.Header[k] = vs // as a NATS client sends it: names as given
		}
		m.Data = body
		resp := svc.InvokeNATS(context.Background(), "probe", m)

		for _, got := range []struct {
			via    string
			status int
			header http.Header
			body   []byte
		}{{"HTTP", rec.Code, rec.Header(), rec.Body.Bytes()}, {"NATS", resp.Status, resp.Header, resp.Body.Bytes()}} {
			switch {
			case got.status == http.StatusGatewayTimeout && budgetGiven:
			case got.status >= 500 || got.status < 200:
				t.Fatalf("%s answered %d: %s", got.via, got.status, got.body)
			case got.status >= 400 && got.header.Get("Content-Type") != "application/problem+json":
				t.Fatalf("%s answered %d as %q", got.via, got.status, got.header.Get("Content-Type"))
			}
			if id := got.header.Get(ferry.HeaderRequestID); id == "" || len(id) > 128 || strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
				t.Fatalf("%s answered the request ID %q", got.via, id)
			}
			if got.status != http.StatusOK {
				continue
			}
			var seen CallSeen
			if err := json.Unmarshal(got.body, &seen.Body); err != nil {
				t.Fatalf("%s answered %q: %v", got.via, got.body, err)
			}
			if seen.Body.Budget > probeCallTimeoutMax {
				t.Fatalf("%s: a budget of %v, past the cap of %v (headers %v)", got.via, seen.Body.Budget, probeCallTimeoutMax, header)
			}
			if got.via == "NATS" && seen.Body.Budget == 0 {
				t.Fatalf("a NATS call without a deadline (headers %v)", header)
			}
			if seen.Body.Principal != "" && (seen.Body.Principal != "ops" || !keyGiven) {
				t.Fatalf("%s: principal %q without its key (headers %v)", got.via, seen.Body.Principal, header)
			}
			if seen.Body.RequestID != got.header.Get(ferry.HeaderRequestID) {
				t.Fatalf("%s: the handler saw the request ID %q, the caller was answered %q", got.via, seen.Body.RequestID, got.header.Get(ferry.HeaderRequestID))
			}
		}
	})
}

// validHeaderName reports whether name is an HTTP header field name
// (a token).
func validHeaderName(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.ContainsRune("\"(),/:;<=>?@[\\]{}", rune(c)) {
			return false
		}
	}
	return true
}
