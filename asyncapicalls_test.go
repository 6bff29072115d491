package ferry_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

type echoBody struct {
	Text string `json:"text" maxLength:"64"`
}

var (
	calleeEcho = ferry.Endpoint[echoBody, echoBody]{Service: "callee", Name: "echo", Method: http.MethodPost, Path: "/echo", Summary: "Echo the text"}
	calleeWeb  = ferry.Endpoint[struct{}, echoBody]{Service: "callee", Name: "web-only", Method: http.MethodGet, Path: "/web", HTTPOnly: true}
	calleeNATS = ferry.Endpoint[struct{}, echoBody]{Service: "callee", Name: "nats-only", Method: http.MethodGet, Path: "/nats", NATSOnly: true}
	callerRun  = ferry.Endpoint[struct{}, echoBody]{Service: "caller", Name: "relay", Method: http.MethodGet, Path: "/relay"}
)

// TestAsyncAPIEndpointsAndCalls: a service's AsyncAPI document lists the
// endpoints it serves over NATS, each received with a reply, and not its
// HTTPOnly ones; once one of its handlers has called other endpoints
// (typed or raw), its document lists those calls as observed send
// operations, over HTTP and over NATS alike.
func TestAsyncAPIEndpointsAndCalls(t *testing.T) {
	callee := ferry.MustNew("callee", "1.0.0", ferry.WithNATS(), quiet)
	ferry.Handle(callee, calleeEcho, func(_ context.Context, in *echoBody) (*echoBody, error) { return in, nil })
	ferry.Handle(callee, calleeWeb, func(context.Context, *struct{}) (*echoBody, error) { return &echoBody{}, nil })
	ferry.Handle(callee, calleeNATS, func(context.Context, *struct{}) (*echoBody, error) { return &echoBody{Text: "n"}, nil })
	caller := ferry.MustNew("caller", "1.0.0", ferry.WithNATS(), quiet)
	ferry.Handle(caller, callerRun, func(ctx context.Context, _ *struct{}) (*echoBody, error) {
		out, err := calleeEcho.Call(ctx, caller.Client(), &echoBody{Text: "hi"})
		if err != nil {
			return nil, err
		}
		if _, err := ferry.CallRaw(ctx, caller.Client(), ferry.RawCall{Service: "callee", Endpoint: "nats-only"}); err != nil {
			return nil, err
		}
		return out, nil
	})
	h := ferrytest.Start(t, callee, caller)
	ctx := context.Background()

	doc := fetchAsyncAPI(t, h, "callee")
	for _, c := range []struct {
		path string
		want any
	}{
		{"operations serve-echo action", "receive"},
		{"operations serve-echo summary", "Echo the text"},
		{"operations serve-echo reply channel $ref", "#/channels/callee.echo.reply"},
		{"operations serve-nats-only action", "receive"},
		{"operations serve-web-only", nil},
		{"channels callee.web-only", nil},
		{"channels callee.echo address", "ferry.callee.echo"},
		{"channels callee.echo.reply address", nil},
		{"channels callee.echo messages request payload schema $ref", "#/components/schemas/ferry_test.EchoBody"},
		{"channels callee.echo.reply messages reply payload schema $ref", "#/components/schemas/ferry_test.EchoBody"},
		{"channels callee.nats-only messages request payload", nil},
		{"components messages ferry-problem payload schema $ref", "#/components/schemas/ferry.Error"},
	} {
		if got := jsonAt(doc, c.path); !equalJSON(got, c.want) {
			t.Errorf("callee: %s = %#v, want %#v", c.path, got, c.want)
		}
	}
	if hasObserved(doc) {
		t.Error("callee: observed calls before any call")
	}
	if hasObserved(fetchAsyncAPI(t, h, "caller")) {
		t.Error("caller: observed calls before any call")
	}

	// Calls made outside a handler are no service's.
	if _, err := calleeEcho.Call(ctx, h.Client, &echoBody{Text: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := callerRun.Call(ctx, h.Client, nil); err != nil {
		t.Fatal(err)
	}
	for name, doc := range map[string]map[string]any{
		"NATS": fetchAsyncAPI(t, h, "caller"),
		"HTTP": httpAsyncAPI(t, caller),
	} {
		for _, c := range []struct {
			path string
			want any
		}{
			{"operations call-callee.echo action", "send"},
			{"operations call-callee.echo x-ferry-observed", true},
			{"operations call-callee.echo reply channel $ref", "#/channels/callee.echo.reply"},
			{"operations call-callee.nats-only x-ferry-observed", true},
			{"channels callee.echo address", "ferry.callee.echo"},
			{"operations serve-relay action", "receive"},
			{"operations serve-relay x-ferry-observed", nil},
		} {
			if got := jsonAt(doc, c.path); !equalJSON(got, c.want) {
				t.Errorf("caller over %s: %s = %#v, want %#v", name, c.path, got, c.want)
			}
		}
	}
	if hasObserved(fetchAsyncAPI(t, h, "callee")) {
		t.Error("callee: a call from outside a handler was recorded")
	}
	validateAsyncAPI(t, fetchAsyncAPIBytes(t, h, "caller"))
	validateAsyncAPI(t, fetchAsyncAPIBytes(t, h, "callee"))
}

func fetchAsyncAPIBytes(t *testing.T, h *ferrytest.Host, service string) []byte {
	t.Helper()
	b, err := ferry.FetchAsyncAPI(context.Background(), h.Client, service)
	if err != nil {
		t.Fatalf("FetchAsyncAPI %s: %v", service, err)
	}
	return b
}

func fetchAsyncAPI(t *testing.T, h *ferrytest.Host, service string) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(fetchAsyncAPIBytes(t, h, service), &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func httpAsyncAPI(t *testing.T, svc *ferry.Service) map[string]any {
	t.Helper()
	rec := do(t, svc.Handler(), http.MethodGet, "/asyncapi.json", "", nil)
	var doc map[string]any
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &doc) != nil {
		t.Fatalf("GET /asyncapi.json: %d %.200s", rec.Code, rec.Body)
	}
	return doc
}

func hasObserved(doc map[string]any) bool {
	ops, _ := doc["operations"].(map[string]any)
	for _, op := range ops {
		if m, _ := op.(map[string]any); m["x-ferry-observed"] != nil {
			return true
		}
	}
	return false
}

// jsonAt returns the value at a space-separated path of object keys and
// array indexes in a decoded JSON document, or nil.
func jsonAt(v any, path string) any {
	for _, p := range strings.Fields(path) {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			var i int
			if err := json.Unmarshal([]byte(p), &i); err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// validateAsyncAPI checks a document with the official parser of
// internal/asyncapi's tests, when it is installed (its own test fails
// under CI=true when it is not).
func validateAsyncAPI(t *testing.T, doc []byte) {
	t.Helper()
	dir := filepath.Join("internal", "asyncapi", "testdata", "validator")
	node, err := exec.LookPath("node")
	if err != nil {
		t.Log("node is not installed: the document is not validated")
		return
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@asyncapi", "parser")); err != nil {
		t.Log("the AsyncAPI validator is not installed (cd " + dir + " && npm ci): the document is not validated")
		return
	}
	file := filepath.Join(t.TempDir(), "asyncapi.json")
	if err := os.WriteFile(file, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, node, filepath.Join(dir, "validate.mjs"), file).CombinedOutput(); err != nil {
		t.Errorf("the AsyncAPI parser rejects the document: %v\n%s", err, out)
	}
}
