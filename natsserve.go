package ferry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ferrygo/ferry/internal/discovery"
	"github.com/ferrygo/ferry/internal/envelope"
	"github.com/ferrygo/ferry/internal/naming"
	"github.com/ferrygo/ferry/internal/natsproto"
	"github.com/ferrygo/ferry/internal/rpc"
	"github.com/ferrygo/ferry/internal/telemetry"
)

// natsEndpoints is a service's presence on the broker, a component of its
// host: the $SRV discovery responders (every service answers them, with
// its HTTP address and the endpoints it serves over NATS, possibly none),
// and, for a service that opted in with [WithNATS], its endpoints over
// NATS request/reply on the pool of internal/rpc (Config.NATSWorkers at
// once; further calls wait within Config.NATSPendingBytes, and beyond it
// are answered 503 overloaded at once), each call run through the very
// operation HTTP runs.
type natsEndpoints struct {
	svc  *Service
	host *Host

	nc        *nats.Conn
	server    *rpc.Server
	responder *discovery.Responder
	docs      []*nats.Subscription // the documents' subjects (servicedocs.go)
}

// Name implements lifecycle.Component.
func (ne *natsEndpoints) Name() string { return "NATS endpoints of service " + ne.svc.name }

// Start implements lifecycle.Component: discovery first (a call may
// arrive as soon as a subscription exists, and its statistics go to the
// responder), then the endpoints, then a flush, so a call made once the
// host has started reaches the service.
func (ne *natsEndpoints) Start(context.Context) error {
	s := ne.svc
	ne.nc = ne.host.broker.Load().Conn()
	info := discovery.Info{Name: s.name, Version: s.version, Description: s.description, Data: ne.host.endpointData(s.name)}
	if a := s.Addr(); a != nil {
		info.Metadata = map[string]string{"http": a.String()}
	}
	if jobs := s.jobNames(); jobs != "" {
		if info.Metadata == nil {
			info.Metadata = map[string]string{}
		}
		info.Metadata["jobs"] = jobs // the job kinds it runs
	}
	var routes []rpc.Route
	if s.needsNATS {
		for _, ep := range s.boundEndpoints() {
			if ep.httpOnly {
				continue
			}
			subject := naming.EndpointSubject(s.name, ep.name)
			routes = append(routes, rpc.Route{Name: ep.name, Subject: subject})
			info.Endpoints = append(info.Endpoints, discovery.Endpoint{Name: ep.name, Subject: subject,
				QueueGroup: naming.QueueGroup, Metadata: map[string]string{"method": ep.method, "path": ep.path}})
		}
	}
	r, err := discovery.Start(ne.nc, info)
	if err != nil {
		return fmt.Errorf("ferry: service %s: discovery: %w", s.name, err)
	}
	ne.responder = r
	if s.needsNATS {
		if ne.docs, err = s.serveDocuments(ne.nc); err != nil {
			return fmt.Errorf("ferry: service %s: documents over NATS: %w", s.name, err)
		}
	}
	ne.server, err = rpc.Serve(ne.nc, routes, ne.serve, rpc.Options{Queue: naming.QueueGroup,
		MaxWorkers: s.config.natsWorkers(), PendingBytes: int(s.config.natsPendingBytes()), Refuse: ne.refuse})
	if err != nil {
		return fmt.Errorf("ferry: service %s: %w", s.name, err)
	}
	names := make([]string, len(routes))
	for i, r := range routes {
		names[i] = r.Name
	}
	switch {
	case len(routes) > 0:
		ne.host.logger.Info("ferry: serving over NATS", slog.String("service", s.name), slog.Any("endpoints", names))
	case len(s.boundEndpoints()) > 0 && !s.needsNATS:
		ne.host.logger.Info("ferry: not serving over NATS (add ferry.WithNATS() to the service to expose its endpoints)", slog.String("service", s.name))
	}
	if err := ne.nc.FlushTimeout(10 * time.Second); err != nil {
		return fmt.Errorf("ferry: broker: %w", err)
	}
	return nil
}

// serve runs one call and answers it. The body limit is the operation's,
// as over HTTP. A reply the broker cannot carry (larger than its max
// payload) is answered with a 502 response_too_large problem instead, so
// the caller does not wait out its deadline.
func (ne *natsEndpoints) serve(ctx context.Context, name string, m *nats.Msg) {
	start := time.Now()
	ob := ne.svc.observer.load()
	if ob != nil {
		var o *telemetry.Outcome
		ctx, o = ne.svc.observeCall(ctx, ob, name, m.Header)
		resp := ne.answer(ctx, name, m, start)
		endCall(ctx, ob, o, resp.Status, "")
		return
	}
	ne.answer(ctx, name, m, start)
}

// answer runs one call, answers it and records it for discovery's
// statistics; it returns what was answered.
func (ne *natsEndpoints) answer(ctx context.Context, name string, m *nats.Msg, start time.Time) *envelope.Response {
	resp := ne.svc.natsCall(ctx, name, m)
	err := m.RespondMsg(natsproto.EncodeResponse(resp))
	if errors.Is(err, nats.ErrMaxPayload) {
		ne.svc.logger.Error("ferry: NATS reply larger than the broker's max payload; answered 502", slog.String("service", ne.svc.name),
			slog.String("endpoint", name), slog.Int("body_bytes", resp.Body.Len()), slog.Int64("max_payload", ne.nc.MaxPayload()))
		resp = ne.svc.problemResponse(&Error{Status: http.StatusBadGateway, Code: "response_too_large",
			Detail: fmt.Sprintf("the response of %s.%s exceeds the broker's max payload (%d bytes); call it over HTTP", ne.svc.name, name, ne.nc.MaxPayload())},
			resp.Header.Get(HeaderRequestID))
		err = m.RespondMsg(natsproto.EncodeResponse(resp))
	}
	if err != nil {
		ne.svc.logger.Warn("ferry: NATS reply failed", slog.String("service", ne.svc.name), slog.String("endpoint", name),
			slog.String("err", err.Error()))
	}
	failed := resp.Status >= http.StatusInternalServerError
	detail := ""
	if failed {
		detail = natsproto.ProblemDetail(resp.Body.Bytes(), resp.Status)
	}
	ne.responder.Record(name, time.Since(start), failed, resp.Status, detail)
	return resp
}

// natsCall decodes the NATS call m to the endpoint named name, runs it
// and returns its response (not yet sent).
func (s *Service) natsCall(ctx context.Context, name string, m *nats.Msg) *envelope.Response {
	tooLarge := s.natsHeaderTooLarge(m.Header) // before decoding takes Ferry-Path and Ferry-Query out
	req, err := natsproto.DecodeRequest(m)
	switch {
	case tooLarge != nil:
		return s.problemResponse(tooLarge, incomingRequestID(outcomeFrom(ctx), m.Header.Get(HeaderRequestID)))
	case err != nil:
		return s.problemResponse(&Error{Status: http.StatusBadRequest, Detail: err.Error()}, incomingRequestID(outcomeFrom(ctx), m.Header.Get(HeaderRequestID)))
	}
	return s.invoke(ctx, TransportNATS, name, req)
}

// StopIntake implements lifecycle.Component: no new calls are taken (those
// already received are still dispatched) and discovery stops answering.
func (ne *natsEndpoints) StopIntake() {
	for _, sub := range ne.docs {
		_ = sub.Unsubscribe()
	}
	if ne.server != nil {
		ne.server.StopIntake()
	}
	if ne.responder != nil {
		_ = ne.responder.Stop()
	}
}

// Drain implements lifecycle.Component.
func (ne *natsEndpoints) Drain(ctx context.Context) error {
	if ne.server == nil {
		return nil
	}
	return ne.server.Drain(ctx)
}

// Close implements lifecycle.Component.
func (ne *natsEndpoints) Close(context.Context) error {
	if ne.server != nil {
		_ = ne.server.Close()
	}
	if ne.responder != nil {
		_ = ne.responder.Stop()
	}
	return nil
}

// problemResponse answers a call refused before it reached an endpoint.
func (s *Service) problemResponse(fe *Error, requestIDHeader string) *envelope.Response {
	resp := &envelope.Response{Header: http.Header{}}
	s.writeEnvelopeError(resp, fe.complete(requestID(requestIDHeader)))
	return resp
}
