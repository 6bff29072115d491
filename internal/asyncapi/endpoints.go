package asyncapi

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/danielgtaylor/huma/v2"
)

// Endpoint is a request/reply endpoint a service serves over NATS.
//
// It becomes two channels: "<Service>.<Name>" on its subject, whose message
// "request" is the request body, and "<Service>.<Name>.reply" with no
// address (null: the reply subject is the request's own, a NATS inbox
// chosen by the caller), whose messages are "reply" (the response body)
// and "problem" (an error's problem details). The service receives on the
// first and replies on the second: operation "serve-<Name>", action
// receive, with a reply. Channel IDs hold a dot, so they never clash with
// a topic's channel.
type Endpoint struct {
	Service string // the serving service's name: ^[A-Za-z0-9_-]+$
	Name    string // the endpoint's name: ^[A-Za-z0-9_-]+$
	Subject string // NATS subject, the channel address: ferry.<Service>.<Name>
	Summary string // optional; on the operation
	// Description is optional; on the operation and the request message.
	Description string
	// Request and Response are the body schemas as the registry returned
	// them; nil = no body (or none declared).
	Request, Response *huma.Schema
}

// Call is an endpoint of another service (or of the service itself) that
// the service was seen calling: operation "call-<Service>.<Name>", action
// send, with a reply, marked x-ferry-observed. Its messages have no
// payload schema: the endpoint's own service documents them.
type Call struct {
	Service, Name, Subject string
}

// Names of the components request/reply channels refer to.
const (
	problemMessage     = "ferry-problem"
	requestHeadersName = "ferry-request-headers"
	replyHeadersName   = "ferry-reply-headers"
	// natsQueue is the queue group every endpoint is served in.
	natsQueue = "q"
)

// requestHeaders is the schema of the NATS headers of a request
// (docs/protocol.md, "Request message").
var requestHeaders = map[string]any{
	"type":                 "object",
	"description":          "NATS headers of a Ferry request. The endpoint's own header parameters, Content-Type and credentials travel as headers too.",
	"additionalProperties": map[string]any{"type": "string"},
	"properties": map[string]any{
		"Ferry-Path":    map[string]any{"type": "string", "description": "The path parameters, form-encoded (sku=kettle); omitted when the path has none."},
		"Ferry-Query":   map[string]any{"type": "string", "description": "The query string without '?', as in a URL."},
		"Ferry-Timeout": map[string]any{"type": "string", "pattern": "^-?[0-9]+$", "description": "The caller's remaining budget in whole milliseconds."},
		"X-Request-Id":  map[string]any{"type": "string", "description": "The request ID (1-128 printable ASCII characters); made by the callee when absent."},
		"traceparent":   map[string]any{"type": "string", "description": "W3C trace context."},
		"tracestate":    map[string]any{"type": "string", "description": "W3C trace context."},
		"Content-Type":  map[string]any{"type": "string", "description": "The body's media type; JSON when absent."},
	},
}

// replyHeaders is the schema of the NATS headers of a reply
// (docs/protocol.md, "Reply message").
var replyHeaders = map[string]any{
	"type":                 "object",
	"description":          "NATS headers of a Ferry reply. The endpoint's own response headers travel as headers too.",
	"additionalProperties": map[string]any{"type": "string"},
	"required":             []any{"Ferry-Status"},
	"properties": map[string]any{
		"Ferry-Status":            map[string]any{"type": "string", "pattern": "^[1-5][0-9][0-9]$", "description": "The HTTP status code of the answer."},
		"Content-Type":            map[string]any{"type": "string", "description": "application/json, or application/problem+json for errors."},
		"X-Request-Id":            map[string]any{"type": "string", "description": "The request ID."},
		"Nats-Service-Error-Code": map[string]any{"type": "string", "description": "On errors only: the status."},
		"Nats-Service-Error":      map[string]any{"type": "string", "description": "On errors only: the problem's detail."},
	},
}

// callParts converts the problem schema and returns the components every
// request/reply channel refers to.
func callParts(problem *huma.Schema, reg huma.Registry) (*components, error) {
	c := &components{
		Schemas: map[string]any{requestHeadersName: requestHeaders, replyHeadersName: replyHeaders},
		Messages: map[string]*message{problemMessage: {
			Name:        problemMessage,
			Title:       "Problem details",
			Description: "An error reply (Ferry-Status 400 or more): an RFC 9457 problem document with Ferry's members (code, request_id, errors), as over HTTP.",
			ContentType: "application/problem+json",
			Headers:     ref{componentsPrefix + replyHeadersName},
		}},
	}
	if problem != nil {
		conv := newConverter(reg)
		s, err := conv.root(problem)
		if err != nil {
			return nil, fmt.Errorf("problem schema: %w", err)
		}
		schemas, err := conv.components()
		if err != nil {
			return nil, fmt.Errorf("problem schema: %w", err)
		}
		maps.Copy(c.Schemas, schemas)
		c.Messages[problemMessage].Payload = &payload{SchemaFormat: schemaFormat, Schema: s}
	}
	return c, nil
}

// addCallParts adds the call parts to the document's components; a
// schema already there under the same name must be the same.
func (d *Document) addCallParts() error {
	if d.doc.Components == nil {
		d.doc.Components = &components{}
	}
	c := d.doc.Components
	if c.Schemas == nil {
		c.Schemas = map[string]any{}
	}
	for _, name := range slices.Sorted(maps.Keys(d.callParts.Schemas)) {
		s := d.callParts.Schemas[name]
		if prev, ok := c.Schemas[name]; ok {
			a, _ := json.Marshal(prev)
			b, _ := json.Marshal(s)
			if string(a) != string(b) {
				return fmt.Errorf("component schema %q is both a payload's and Ferry's own", name)
			}
			continue
		}
		c.Schemas[name] = s
	}
	if c.Messages == nil {
		c.Messages = map[string]*message{}
	}
	maps.Copy(c.Messages, d.callParts.Messages)
	return nil
}

// endpoint adds a served endpoint's channels and its receive operation.
func (b *builder) endpoint(e Endpoint) error {
	id, err := endpointID(e.Service, e.Name, e.Subject)
	if err != nil {
		return err
	}
	req, err := b.body(e.Request)
	if err != nil {
		return fmt.Errorf("endpoint %q: request: %w", id, err)
	}
	resp, err := b.body(e.Response)
	if err != nil {
		return fmt.Errorf("endpoint %q: response: %w", id, err)
	}
	if _, dup := b.doc.Channels[id]; dup {
		return fmt.Errorf("endpoint %q is declared twice", id)
	}
	addEndpointChannels(&b.doc, id, e.Subject, e.Description, req, resp,
		"Endpoint "+e.Name+" of service "+e.Service+", called with a NATS request (queue group "+natsQueue+").")
	op := "serve-" + e.Name
	if _, dup := b.doc.Operations[op]; dup {
		return fmt.Errorf("operation ID %q is used twice", op)
	}
	b.doc.Operations[op] = &operation{
		Action:      "receive",
		Channel:     ref{"#/channels/" + id},
		Summary:     e.Summary,
		Description: e.Description,
		Messages:    []ref{{"#/channels/" + id + "/messages/request"}},
		Reply:       replyOf(id),
		Bindings:    map[string]any{"nats": map[string]any{"queue": natsQueue, "bindingVersion": "0.1.0"}},
	}
	return nil
}

// body converts a request or response body schema, or returns nil.
func (b *builder) body(s *huma.Schema) (*payload, error) {
	if s == nil {
		return nil, nil
	}
	conv, err := b.conv.root(s)
	if err != nil {
		return nil, err
	}
	return &payload{SchemaFormat: schemaFormat, Schema: conv}, nil
}

// endpointID checks an endpoint's names and subject and returns its
// channel ID.
func endpointID(service, name, subject string) (string, error) {
	if err := checkName("service name", service); err != nil {
		return "", err
	}
	if err := checkName("endpoint name", name); err != nil {
		return "", fmt.Errorf("service %q: %w", service, err)
	}
	id := service + "." + name
	if err := checkSubject(subject); err != nil {
		return "", fmt.Errorf("endpoint %q: %w", id, err)
	}
	return id, nil
}

// addEndpointChannels adds the request channel id and its reply channel.
func addEndpointChannels(doc *document, id, subject, description string, req, resp *payload, channelDescription string) {
	doc.Channels[id] = &channel{
		Address:     &subject,
		Description: channelDescription,
		Messages: map[string]any{"request": &message{
			Name:        id + ".request",
			Title:       id + " request",
			Description: description,
			ContentType: contentType,
			Headers:     ref{componentsPrefix + requestHeadersName},
			Payload:     req,
		}},
	}
	doc.Channels[id+".reply"] = &channel{
		Description: "The reply to " + id + ": sent to the request's reply subject (a NATS inbox the caller chose), so its address is known only at run time.",
		Messages: map[string]any{
			"reply": &message{
				Name:        id + ".reply",
				Title:       id + " reply",
				Description: "A successful reply (Ferry-Status below 400): the response body, as over HTTP.",
				ContentType: contentType,
				Headers:     ref{componentsPrefix + replyHeadersName},
				Payload:     resp,
			},
			"problem": ref{"#/components/messages/" + problemMessage},
		},
	}
}

func replyOf(id string) *reply {
	ch := "#/channels/" + id + ".reply"
	return &reply{Channel: ref{ch}, Messages: []ref{{ch + "/messages/reply"}, {ch + "/messages/problem"}}}
}

// WithCalls returns the document with the calls added: for each, the
// endpoint's channels (unless the document serves it already) and a send
// operation with a reply, marked x-ferry-observed. d is left as it is and
// shares what did not change with the result, so adding calls to a
// cached document is cheap. Errors start with "asyncapi: ".
func (d *Document) WithCalls(calls []Call) (*Document, error) {
	if len(calls) == 0 {
		return d, nil
	}
	out := &Document{doc: d.doc, callParts: d.callParts}
	out.doc.Channels = maps.Clone(d.doc.Channels)
	out.doc.Operations = maps.Clone(d.doc.Operations)
	if c := d.doc.Components; c != nil {
		out.doc.Components = &components{Schemas: maps.Clone(c.Schemas), Messages: maps.Clone(c.Messages)}
	}
	if err := out.addCallParts(); err != nil {
		return nil, fmt.Errorf("asyncapi: %w", err)
	}
	for _, c := range calls {
		id, err := endpointID(c.Service, c.Name, c.Subject)
		if err != nil {
			return nil, fmt.Errorf("asyncapi: call: %w", err)
		}
		if ch, ok := out.doc.Channels[id]; ok {
			if ch.Address == nil || *ch.Address != c.Subject {
				return nil, fmt.Errorf("asyncapi: call %q: its channel has another address", id)
			}
		} else {
			addEndpointChannels(&out.doc, id, c.Subject, "", nil, nil,
				"Endpoint "+c.Name+" of service "+c.Service+"; its request and reply schemas are in that service's AsyncAPI document.")
		}
		op := "call-" + id
		if _, dup := out.doc.Operations[op]; dup {
			return nil, fmt.Errorf("asyncapi: operation ID %q is used twice", op)
		}
		out.doc.Operations[op] = &operation{
			Action:   "send",
			Channel:  ref{"#/channels/" + id},
			Summary:  "Calls " + c.Service + "." + c.Name + " (observed)",
			Messages: []ref{{"#/channels/" + id + "/messages/request"}},
			Description: "Observed at run time, not declared: this service called endpoint " + c.Name + " of service " + c.Service +
				" from inside one of its handlers since it started.",
			Reply:    replyOf(id),
			Observed: true,
		}
	}
	return out, nil
}
