package ferry_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// TestDocumentsOverNATS: a service served over NATS, even one without
// HTTP, answers its OpenAPI and AsyncAPI documents there; a service
// nobody runs is a 404.
func TestDocumentsOverNATS(t *testing.T) {
	svc := ferry.MustNew("inner", "1.0.0", ferry.WithNATS(), ferry.WithoutHTTP(), quiet)
	ferry.Handle(svc, internalEndpoint, func(ctx context.Context, in *internalIn) (*internalIn, error) { return in, nil })
	h := ferrytest.Start(t, svc)
	ctx := context.Background()
	for name, fetch := range map[string]func(context.Context, *ferry.Client, string) ([]byte, error){
		"openapi": ferry.FetchOpenAPI, "asyncapi": ferry.FetchAsyncAPI,
	} {
		doc, err := fetch(ctx, h.Client, "inner")
		var parsed map[string]any
		if err != nil || json.Unmarshal(doc, &parsed) != nil {
			t.Fatalf("%s: %v (%.80s)", name, err, doc)
		}
		if _, ok := parsed[name]; !ok {
			t.Errorf("%s: the document has no %q field: %.120s", name, name, doc)
		}
	}
	var fe *ferry.Error
	if _, err := ferry.FetchOpenAPI(ctx, h.Client, "nobody"); !errors.As(err, &fe) || fe.Status != http.StatusNotFound {
		t.Errorf("a service nobody runs: %v, want a 404", err)
	}
}
