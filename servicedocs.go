package ferry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/nats-io/nats.go"

	"github.com/ferrygo/ferry/internal/naming"
)

// A service served over NATS ([WithNATS]) also answers its documents
// there — what its HTTP listener serves at /openapi.json and
// /asyncapi.json — so tools (the ferry command, the dashboard) read every
// service's, those without HTTP included: [FetchOpenAPI], [FetchAsyncAPI].

// The kinds of document a service answers over NATS.
const (
	docOpenAPI  = "openapi"
	docAsyncAPI = "asyncapi"
)

// serveDocuments subscribes the service's document subjects (queue group
// "q": one instance answers).
func (s *Service) serveDocuments(nc *nats.Conn) ([]*nats.Subscription, error) {
	var subs []*nats.Subscription
	for _, kind := range []string{docOpenAPI, docAsyncAPI} {
		sub, err := nc.QueueSubscribe(naming.DocsSubject(s.name, kind), naming.QueueGroup, func(m *nats.Msg) {
			doc, err := s.document(kind)
			reply := nats.NewMsg(m.Reply)
			if err != nil {
				reply.Header.Set("Ferry-Status", "500")
				s.logger.Error("ferry: document over NATS", "service", s.name, "document", kind, "err", err.Error())
			} else {
				reply.Header.Set("Ferry-Status", "200")
				reply.Header.Set("Content-Type", "application/json")
				reply.Data = doc
			}
			_ = m.RespondMsg(reply)
		})
		if err != nil {
			for _, done := range subs {
				_ = done.Unsubscribe()
			}
			return nil, err
		}
		subs = append(subs, sub)
	}
	return subs, nil
}

// document renders the service's document of kind, as its HTTP listener
// serves it.
func (s *Service) document(kind string) ([]byte, error) {
	if kind == docAsyncAPI {
		return s.AsyncAPI()
	}
	rec := httptest.NewRecorder()
	s.mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("openapi.json: status %d", rec.Code)
	}
	return rec.Body.Bytes(), nil
}

// FetchOpenAPI returns the OpenAPI document of the service named service,
// as one of its instances answers it over NATS.
func FetchOpenAPI(ctx context.Context, c *Client, service string) ([]byte, error) {
	return fetchDocument(ctx, c, service, docOpenAPI)
}

// FetchAsyncAPI returns the AsyncAPI document of the service named
// service, as one of its instances answers it over NATS.
func FetchAsyncAPI(ctx context.Context, c *Client, service string) ([]byte, error) {
	return fetchDocument(ctx, c, service, docAsyncAPI)
}

func fetchDocument(ctx context.Context, c *Client, service, kind string) ([]byte, error) {
	if err := naming.CheckServiceName(service); err != nil {
		return nil, fmt.Errorf("ferry: %s document: %w", kind, err)
	}
	if c == nil || c.nc == nil {
		return nil, fmt.Errorf("ferry: %s document of %s: %w", kind, service, errNoClient)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCallTimeout)
		defer cancel()
	}
	reply, err := c.nc.RequestWithContext(ctx, naming.DocsSubject(service, kind), nil)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, &Error{Status: http.StatusNotFound, Code: "service_not_found",
			Detail: "no instance of service " + service + " answers over NATS (is it running, with ferry.WithNATS()?)", cause: err}
	case err != nil:
		return nil, fmt.Errorf("ferry: %s document of %s: %w", kind, service, err)
	case reply.Header.Get("Ferry-Status") != "200":
		return nil, fmt.Errorf("ferry: %s document of %s: the service failed to render it (its log says why)", kind, service)
	}
	return reply.Data, nil
}
