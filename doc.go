// Package ferry is a toolkit for asynchronous microservices: write a typed
// Go function once, and Ferry serves it over HTTP with OpenAPI and over
// NATS to typed clients, with one error type, one middleware chain and one
// lifecycle for every transport.
//
// # Services and endpoints
//
// A [Service] has a name and a version. An [Endpoint] is a value that
// declares a request/response operation — the service that serves it, a
// stable name, a method and path, and typed input and output — usually in
// a contract package that other services import. [Handle] binds a handler
// to it, and other services call it through it with [Endpoint.Call]:
//
//	var GetItem = ferry.Endpoint[GetItemInput, GetItemOutput]{
//		Service: "items", Name: "get-item", Method: http.MethodGet, Path: "/items/{item_id}",
//	}
//
//	svc := ferry.MustNew("items", "1.0.0")
//	ferry.Handle(svc, GetItem, func(ctx context.Context, in *GetItemInput) (*GetItemOutput, error) { … })
//	err := ferry.Run(ctx, svc)
//
//	// in a handler of another service created with ferry.WithNATS():
//	out, err := itemsapi.GetItem.Call(ctx, svc.Client(), &itemsapi.GetItemInput{ItemID: 42})
//
// [Get], [Post], [Put], [Patch] and [Delete] declare and bind an endpoint
// in place, for one that no other service calls.
//
// Input and output types follow Huma's conventions (path, query and header
// tags, a Body field, validation tags). Each service serves its OpenAPI 3.1
// document at /openapi.json and /openapi.yaml and an interactive page at
// /docs whose assets are embedded in the binary.
//
// # Errors
//
// Handlers return errors as values. An [*Error] carries an HTTP status, a
// machine code, a detail and field errors and is written as RFC 9457
// problem details; any other error becomes a generic 500 whose text is
// logged with the request ID and never sent. The failure of a call to
// another service is a [*CallError]: returned by a handler, it answers 502,
// 503 or 504, never the callee's problem, unless the handler passes it on
// with [PassOn]. [Permanent] and [IsPermanent] say whether retrying can
// help, for events and jobs.
//
// # Middleware
//
// A [Middleware] wraps a [Handler] over a transport-neutral [Request], so
// one chain serves HTTP, NATS calls, events and jobs. [Recover] runs
// outermost in every service and turns a panic into a 500. On the way out,
// a [ClientMiddleware] wraps every call and publish of a [Client] over an
// [OutgoingMessage] ([WithClientMiddleware]); [CallHeader], [CallTimeout],
// [PublishHeader] and [PublishTimeout] adjust one call or publish.
//
// # Hosting and configuration
//
// A [Host] runs several services in one process with one signal handler
// and one shutdown sequence; [Run] is the one-service shortcut. Settings
// come from one [Config] struct, filled from flags and the environment by
// [LoadConfig] and passed with [WithConfig].
package ferry
