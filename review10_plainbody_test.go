package ferry_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

func review10Do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// An ordinary request body with a field named Status (an order's new
// status, say): Huma reads no status from an input.
type review10SetStatus struct {
	Status int `json:"status" minimum:"1"`
}

// An output's Status int field is its HTTP status (Huma's convention): the
// order's status is named otherwise here.
type review10Order struct {
	ID    string `json:"id"`
	State int    `json:"status_code"`
}

// TestReview10PlainInputWithStatusField: a plain request struct with a
// Status int field is a body like any other over HTTP and NATS; Handle
// does not panic.
func TestReview10PlainInputWithStatusField(t *testing.T) {
	svc := ferry.MustNew("orders10", "1.0.0", ferry.WithNATS(), quiet)
	ep := ferry.Endpoint[review10SetStatus, review10Order]{Service: "orders10", Name: "set-status", Method: http.MethodPut, Path: "/status"}
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("Handle panicked: %v", r)
			}
		}()
		ferry.Handle(svc, ep, func(ctx context.Context, in *review10SetStatus) (*review10Order, error) {
			return &review10Order{ID: "o1", State: in.Status}, nil
		})
	}()
	h := ferrytest.Start(t, svc)
	status, body := review10Do(t, http.MethodPut, ferrytest.URL(t, svc)+"/status", `{"status":3}`)
	if status != 200 || !strings.Contains(body, `"status_code":3`) {
		t.Errorf("PUT /status: %d %s", status, body)
	}
	out, err := ep.Call(context.Background(), h.Client, &review10SetStatus{Status: 3})
	if err != nil || out.State != 3 {
		t.Errorf("call: %+v, %v", out, err)
	}
}

type review10Plain struct {
	Name string `json:"name" minLength:"1"`
}

// TestReview10PlainNilOutput: a handler that returns no output and no
// error answers the same over HTTP and NATS: a 2xx, and the client gets a
// zero output, not an error.
func TestReview10PlainNilOutput(t *testing.T) {
	svc := ferry.MustNew("nil10", "1.0.0", ferry.WithNATS(), quiet)
	ep := ferry.Endpoint[review10Plain, review10Plain]{Service: "nil10", Name: "echo", Method: http.MethodPost, Path: "/echo"}
	ferry.Handle(svc, ep, func(ctx context.Context, in *review10Plain) (*review10Plain, error) {
		if in.Name == "nil" {
			return nil, nil
		}
		return in, nil
	})
	h := ferrytest.Start(t, svc)
	status, body := review10Do(t, http.MethodPost, ferrytest.URL(t, svc)+"/echo", `{"name":"nil"}`)
	t.Logf("HTTP nil output: %d %q", status, body)
	if status >= 300 {
		t.Errorf("HTTP nil output: %d %s", status, body)
	}
	out, err := ep.Call(context.Background(), h.Client, &review10Plain{Name: "nil"})
	t.Logf("NATS nil output: %+v %v", out, err)
	if err != nil || out == nil {
		t.Errorf("NATS nil output: %+v %v", out, err)
	}
	// Unknown properties are tolerated, an empty body is refused, over HTTP.
	if status, body := review10Do(t, http.MethodPost, ferrytest.URL(t, svc)+"/echo", `{"name":"a","extra":1}`); status != 200 || body != `{"name":"a"}` {
		t.Errorf("unknown property: %d %s", status, body)
	}
	if status, body := review10Do(t, http.MethodPost, ferrytest.URL(t, svc)+"/echo", `null`); status < 400 {
		t.Errorf("null body: %d %s", status, body)
	}
}
