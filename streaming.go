package ferry

// Streaming responses: exempt, by declaration, from the write timeout of
// the service's HTTP server and from its concurrency limit.

import (
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
)

// Streaming declares a Huma operation registered directly on
// [Service.API] — such as a Server-Sent Events stream made with Huma's
// sse.Register — as a stream: over HTTP its write deadline
// (Config.HTTPWriteTimeout) is lifted when it starts, so the response
// lasts as long as it streams. Call it on the operation before
// registering it:
//
//	op := huma.Operation{OperationID: "ticks", Method: http.MethodGet, Path: "/ticks"}
//	ferry.Streaming(&op)
//	sse.Register(svc.API(), op, map[string]any{"tick": Tick{}}, stream)
//
// Operations registered on Service.API bypass Ferry's middleware, so the
// concurrency limit never counts them. (Huma's sse package also sets a
// write deadline of its own before each message, sse.WriteTimeout.) For an
// endpoint bound with [Handle], set Endpoint.Streaming instead.
func Streaming(op *huma.Operation) {
	op.Middlewares = append(huma.Middlewares{func(hctx huma.Context, next func(huma.Context)) {
		liftWriteDeadline(hctx)
		next(hctx)
	}}, op.Middlewares...)
}

// liftWriteDeadline clears the write deadline of an HTTP response, through
// http.ResponseController; a context of another transport (NATS, in
// memory) or a writer without deadlines is left as it is.
func liftWriteDeadline(hctx huma.Context) {
	if t, ok := hctx.(interface{ Transport() string }); ok && t.Transport() != TransportHTTP {
		return
	}
	defer func() { _ = recover() }() // not a humago context: nothing to lift
	_, w := humago.Unwrap(hctx)
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
}
