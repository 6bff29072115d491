package ferry

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/ferrygo/ferry/internal/envelope"
)

// invoke runs the endpoint named name with an envelope request instead of
// HTTP, through exactly the operation Huma registered for HTTP: the same
// binding, validation, middleware, handler and error mapping, so the bytes
// answered are the bytes HTTP would answer. transport names the carrier for
// middleware (transportMemory, TransportNATS).
func (s *Service) invoke(ctx context.Context, transport, name string, req *envelope.Request) *envelope.Response {
	resp := &envelope.Response{Header: http.Header{}}
	rec, ok := s.adapter.lookup(name)
	if !ok {
		fe := (&Error{Status: http.StatusNotFound, Detail: fmt.Sprintf("service %s has no endpoint %q", s.name, name)}).complete(requestID(req.Header.Get(HeaderRequestID)))
		s.writeEnvelopeError(resp, fe)
		return resp
	}
	if req.Header == nil {
		req.Header = http.Header{}
	}
	hctx := envelope.NewContext(ctx, rec.op, req, resp, transport)
	func() {
		defer func() {
			if v := recover(); v != nil {
				id := requestID(req.Header.Get(HeaderRequestID))
				s.logger.ErrorContext(ctx, "ferry: endpoint panicked outside its middleware", slog.String("service", s.name),
					slog.String("endpoint", name), slog.String("request_id", id), slog.String("panic", panicText(req.Header.Get, v)))
				if resp.Status == 0 {
					s.writeEnvelopeError(resp, (&Error{Status: http.StatusInternalServerError, Detail: "internal error; the request ID identifies it in the service's logs"}).complete(id))
				}
			}
		}()
		rec.handler(hctx)
	}()
	if resp.Status == 0 {
		resp.Status = http.StatusOK
	}
	return resp
}

func (s *Service) writeEnvelopeError(resp *envelope.Response, fe *Error) {
	resp.Body.Reset()
	resp.Header.Set("Content-Type", "application/problem+json")
	resp.Header.Set(HeaderRequestID, fe.RequestID)
	for k, vs := range fe.Header {
		resp.Header[k] = append(resp.Header[k], vs...)
	}
	resp.Status = fe.Status
	if err := s.api.Marshal(&resp.Body, "application/json", fe); err != nil {
		s.logger.Error("ferry: writing a problem response failed", slog.String("err", err.Error()))
	}
}
