package ferry

import (
	"bytes"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ferrygo/ferry/internal/asyncapi"
	"github.com/ferrygo/ferry/internal/naming"
)

// AsyncAPIPath is where a service serves its AsyncAPI 3.0 document (.json
// and .yaml): the topics it publishes and subscribes to, with their
// payload schemas, the endpoints it serves over NATS (received, with a
// reply), and the endpoints it was seen calling since it started (sent,
// with a reply, marked x-ferry-observed).
const AsyncAPIPath = "/asyncapi"

// AsyncAPI returns the service's AsyncAPI 3.0 document as JSON, with the
// calls it was observed making so far.
func (s *Service) AsyncAPI() ([]byte, error) {
	doc, err := s.servedAsyncAPI()
	if err != nil {
		return nil, err
	}
	return bytes.Clone(doc.json), nil
}

// builtAsyncAPI is a service's AsyncAPI document, encoded, and the
// declarations it was built from.
type builtAsyncAPI struct {
	key        []docDecl
	endpoints  []boundEndpoint
	doc        *asyncapi.Document
	json, yaml []byte
	err        error
}

// servedAsyncAPI returns the document as served: the static part, built
// once, with the calls observed so far.
func (s *Service) servedAsyncAPI() (*builtAsyncAPI, error) {
	doc, err := s.asyncAPI()
	if err != nil {
		return nil, err
	}
	return s.calls.withCalls(doc)
}

// asyncAPI returns the service's AsyncAPI document. It is built once for
// a set of declarations (so once and for all when the service has
// started), from the frozen payload schemas, which it only reads.
func (s *Service) asyncAPI() (*builtAsyncAPI, error) {
	s.mu.Lock()
	published := make([]topicDecl, 0, len(s.published))
	for _, d := range s.published {
		published = append(published, d)
	}
	subs := slices.Clone(s.subs)
	for _, d := range s.enqueued { // jobs it starts: it sends them
		published = append(published, d)
	}
	var workers []topicDecl // jobs it runs: it receives them
	for _, j := range s.jobs {
		workers = append(workers, j.docTopic())
	}
	var endpoints []boundEndpoint // served over NATS
	for _, ep := range s.endpoints {
		if !ep.httpOnly {
			endpoints = append(endpoints, *ep)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(endpoints, func(a, b boundEndpoint) int { return strings.Compare(a.name, b.name) })
	slices.SortFunc(published, func(a, b topicDecl) int { return strings.Compare(a.name, b.name) })
	slices.SortFunc(workers, func(a, b topicDecl) int { return strings.Compare(a.name, b.name) })

	key := make([]docDecl, 0, len(published)+len(subs))
	for _, d := range published {
		key = append(key, docDecl{topicDecl: d})
	}
	for _, sub := range subs {
		key = append(key, docDecl{topicDecl: sub.decl(), consumer: sub.consumerName()})
	}
	for _, d := range workers {
		key = append(key, docDecl{topicDecl: d, consumer: naming.JobConsumer})
	}
	m := s.messages
	m.docMu.Lock()
	defer m.docMu.Unlock()
	if m.doc != nil && slices.Equal(m.doc.key, key) && slices.Equal(m.doc.endpoints, endpoints) {
		return m.doc, m.doc.err
	}

	topic := func(d topicDecl) asyncapi.Topic {
		return asyncapi.Topic{Name: d.name, Subject: d.subject, Description: d.description, Payload: m.schema(d)}
	}
	info := asyncapi.Info{Title: s.name, Version: s.version, Description: s.description}
	for _, d := range published {
		info.Publishes = append(info.Publishes, topic(d))
	}
	for _, sub := range subs {
		info.Subscribes = append(info.Subscribes, asyncapi.Subscription{Topic: topic(sub.decl()), Consumer: sub.consumerName()})
	}
	for _, d := range workers {
		info.Subscribes = append(info.Subscribes, asyncapi.Subscription{Topic: topic(d), Consumer: naming.JobConsumer})
	}
	body := func(hint string, t reflect.Type) *huma.Schema {
		if t == nil {
			return nil
		}
		return m.schema(topicDecl{name: hint, payload: t})
	}
	for _, ep := range endpoints {
		info.Endpoints = append(info.Endpoints, asyncapi.Endpoint{
			Service: s.name, Name: ep.name, Subject: naming.EndpointSubject(s.name, ep.name),
			Summary: ep.summary, Description: ep.description,
			// Huma's hints for unnamed bodies, as in the OpenAPI document.
			Request: body(ep.name+"Request", ep.inBody), Response: body(ep.name+"Response", ep.outBody),
		})
	}
	info.Problem = body("Error", reflect.TypeFor[Error]())
	info.Registry = m.snapshot() // after the schemas above: it resolves all of them
	built := &builtAsyncAPI{key: key, endpoints: endpoints}
	doc, err := asyncapi.Build(info)
	built.doc = doc
	if err == nil {
		built.json, err = doc.JSON()
	}
	if err == nil {
		built.yaml, err = doc.YAML()
	}
	built.err = err
	m.doc = built
	return built, err
}

// docDecl is a declaration the AsyncAPI document shows: a published
// topic, or a subscription's topic and consumer.
type docDecl struct {
	topicDecl
	consumer string
}

// serveAsyncAPI answers /asyncapi.json and /asyncapi.yaml.
func (s *Service) serveAsyncAPI(w http.ResponseWriter, r *http.Request) {
	doc, err := s.servedAsyncAPI()
	if err != nil {
		s.logger.Error("ferry: AsyncAPI document", "err", err.Error())
		writeProblem(w, (&Error{Status: http.StatusInternalServerError, Detail: "the AsyncAPI document could not be built"}).complete(requestID(r.Header.Get(HeaderRequestID))))
		return
	}
	if strings.HasSuffix(r.URL.Path, ".yaml") {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(doc.yaml)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(doc.json)
}
