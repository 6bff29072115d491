// Package asyncapi builds a service's AsyncAPI 3.0 document from its topics
// and its NATS request/reply endpoints.
//
// Every topic is a channel (ID: the topic name, address: its NATS subject)
// with one message whose payload is the topic's Huma schema. Every
// endpoint the service serves over NATS is a request channel and a reply
// channel with a receive operation that replies ([Endpoint]); every
// endpoint it was seen calling is added at serve time as a send operation
// that expects a reply ([Document.WithCalls]). Huma writes
// JSON Schema 2020-12; AsyncAPI 3.0 schemas are JSON Schema draft-07, so
// each payload is declared as a Multi Format Schema Object with
// schemaFormat "application/schema+json;version=draft-07", and every schema
// reachable from the payloads is converted to draft-07 and stored under
// components.schemas, where the payloads' $refs point
// ("#/components/schemas/<Name>"). The official parser
// (@asyncapi/parser, see testdata/validator) resolves and validates those
// references with no error.
//
// The conversion from JSON Schema 2020-12 to draft-07:
//
//   - $ref "<registry prefix><Name>" becomes "#/components/schemas/<Name>";
//     a $ref with sibling keywords (ignored next to $ref in draft-07)
//     becomes allOf: [{$ref}] beside them.
//   - prefixItems becomes the array form of items, and the 2020-12 items
//     that went with it becomes additionalItems.
//   - $defs becomes definitions.
//   - dependentRequired and dependentSchemas become dependencies (a key in
//     both becomes an allOf of the two).
//   - discriminator {propertyName, mapping} becomes the AsyncAPI string form:
//     the property name.
//   - $schema, $id, $anchor, $dynamicAnchor, $dynamicRef, $vocabulary,
//     unevaluatedProperties, unevaluatedItems, contentSchema, minContains
//     and maxContains are dropped.
//   - Everything else (const, examples, type arrays such as
//     ["array","null"], numeric exclusiveMinimum, extensions) is kept as is.
package asyncapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/yaml"
)

const (
	specVersion = "3.0.0"
	contentType = "application/json"
	// schemaFormat is the format of every message payload.
	schemaFormat = "application/schema+json;version=draft-07"
	// componentsPrefix starts every schema $ref in the document.
	componentsPrefix = "#/components/schemas/"
)

var (
	namePattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	// componentNameInvalid matches what a component key may not contain:
	// AsyncAPI 3.0 keys match ^[\w\d\.\-_]+$ (JavaScript \w is ASCII).
	componentNameInvalid = regexp.MustCompile(`[^A-Za-z0-9._-]`)
)

// Topic is one channel: a topic of events on a NATS subject.
type Topic struct {
	Name        string       // stable topic name, the channel ID: ^[A-Za-z0-9_-]+$
	Subject     string       // NATS subject, the channel address
	Description string       // optional; on the channel and its message
	Payload     *huma.Schema // the payload's schema as the registry returned it (often a $ref); nil = no payload declared
}

// Info describes the document.
type Info struct {
	Title, Version, Description string
	// Server is an optional NATS URL (or comma-separated list of URLs, as
	// NATS clients accept) for the servers section ("" = none). Credentials
	// in it are never written to the document.
	Server     string
	Publishes  []Topic        // topics the service sends
	Subscribes []Subscription // topics it receives
	// Endpoints are the request/reply endpoints the service serves over
	// NATS: each is a channel received with a reply.
	Endpoints []Endpoint
	// Problem is the schema of the problem-details body of an error reply
	// (Ferry's error type), needed when Endpoints is not empty or calls
	// are added ([Document.WithCalls]); nil leaves error replies without
	// a payload schema.
	Problem  *huma.Schema
	Registry huma.Registry // where Payload, Request, Response and Problem $refs resolve
}

// Subscription is a topic the service receives with a durable consumer.
type Subscription struct {
	Topic    Topic
	Consumer string // consumer name, part of the operation ID: ^[A-Za-z0-9_-]+$
}

// Document is a built AsyncAPI document.
type Document struct {
	doc document
	// callParts are the components every request/reply channel refers to
	// (the problem message, the header schemas and the schemas they
	// reach): in doc.Components once an endpoint or a call needs them.
	callParts *components
}

// JSON returns the document as JSON, indented 2 spaces, with a trailing
// newline. Map keys are sorted, so the bytes are stable.
func (d *Document) JSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&d.doc); err != nil {
		return nil, fmt.Errorf("asyncapi: encoding JSON: %w", err)
	}
	return buf.Bytes(), nil
}

// YAML returns the document as YAML (the JSON document converted by Huma's
// JSON-to-YAML converter, so both carry the same content in the same order).
func (d *Document) YAML() ([]byte, error) {
	js, err := d.JSON()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := yaml.Convert(&buf, bytes.NewReader(js)); err != nil {
		return nil, fmt.Errorf("asyncapi: encoding YAML: %w", err)
	}
	return buf.Bytes(), nil
}

// The document's shape. Struct fields keep the conventional order of an
// AsyncAPI document; maps are written with sorted keys.
type document struct {
	AsyncAPI           string                `json:"asyncapi"`
	Info               info                  `json:"info"`
	Servers            map[string]server     `json:"servers,omitempty"`
	DefaultContentType string                `json:"defaultContentType"`
	Channels           map[string]*channel   `json:"channels"`
	Operations         map[string]*operation `json:"operations"`
	Components         *components           `json:"components,omitempty"`
}

type info struct {
	Title       string `json:"title"`
	Version     string `json:"version"`
	Description string `json:"description,omitempty"`
}

type server struct {
	Host     string `json:"host"`
	Protocol string `json:"protocol"`
	Pathname string `json:"pathname,omitempty"`
}

type channel struct {
	// Address is the NATS subject; nil (null: unknown until run time)
	// for a reply channel, whose subject is the request's reply subject.
	Address     *string        `json:"address"`
	Description string         `json:"description,omitempty"`
	Messages    map[string]any `json:"messages"` // *message or ref
}

type message struct {
	Name        string   `json:"name"`
	Title       string   `json:"title"`
	Summary     string   `json:"summary,omitempty"`
	Description string   `json:"description,omitempty"`
	ContentType string   `json:"contentType"`
	Headers     any      `json:"headers,omitempty"`
	Payload     *payload `json:"payload,omitempty"`
}

// payload is a Multi Format Schema Object.
type payload struct {
	SchemaFormat string `json:"schemaFormat"`
	Schema       any    `json:"schema"`
}

type operation struct {
	Action      string         `json:"action"`
	Channel     ref            `json:"channel"`
	Summary     string         `json:"summary,omitempty"`
	Description string         `json:"description,omitempty"`
	Messages    []ref          `json:"messages"`
	Reply       *reply         `json:"reply,omitempty"`
	Bindings    map[string]any `json:"bindings,omitempty"`
	// Consumer is the durable consumer of a receive operation.
	Consumer string `json:"x-ferry-consumer,omitempty"`
	// Observed marks a call seen at run time, not declared.
	Observed bool `json:"x-ferry-observed,omitempty"`
}

// reply is an Operation Reply Object.
type reply struct {
	Channel  ref   `json:"channel"`
	Messages []ref `json:"messages"`
}

type ref struct {
	Ref string `json:"$ref"`
}

type components struct {
	Schemas  map[string]any      `json:"schemas,omitempty"`
	Messages map[string]*message `json:"messages,omitempty"`
}

// Build returns the document. It is deterministic (sorted keys/IDs) so golden
// files are stable. Errors start with "asyncapi: ".
func Build(info Info) (*Document, error) {
	d, err := build(info)
	if err != nil {
		return nil, fmt.Errorf("asyncapi: %w", err)
	}
	return d, nil
}

func build(in Info) (*Document, error) {
	if strings.TrimSpace(in.Title) == "" {
		return nil, fmt.Errorf("info title is empty")
	}
	if strings.TrimSpace(in.Version) == "" {
		return nil, fmt.Errorf("info version is empty")
	}
	srv, err := servers(in.Server)
	if err != nil {
		return nil, err
	}
	b := &builder{
		conv: newConverter(in.Registry),
		doc: document{
			AsyncAPI:           specVersion,
			Info:               info{Title: in.Title, Version: in.Version, Description: in.Description},
			Servers:            srv,
			DefaultContentType: contentType,
			Channels:           map[string]*channel{},
			Operations:         map[string]*operation{},
		},
	}
	for _, t := range in.Publishes {
		if err := b.channel(t); err != nil {
			return nil, err
		}
		if err := b.operation("publish-"+t.Name, "send", t.Name, ""); err != nil {
			return nil, err
		}
	}
	for _, s := range in.Subscribes {
		if err := b.channel(s.Topic); err != nil {
			return nil, err
		}
		if err := checkName("consumer name", s.Consumer); err != nil {
			return nil, fmt.Errorf("subscription to topic %q: %w", s.Topic.Name, err)
		}
		if err := b.operation("receive-"+s.Topic.Name+"-"+s.Consumer, "receive", s.Topic.Name, s.Consumer); err != nil {
			return nil, err
		}
	}
	for _, e := range in.Endpoints {
		if err := b.endpoint(e); err != nil {
			return nil, err
		}
	}
	schemas, err := b.conv.components()
	if err != nil {
		return nil, err
	}
	if len(schemas) > 0 {
		b.doc.Components = &components{Schemas: schemas}
	}
	d := &Document{doc: b.doc}
	if d.callParts, err = callParts(in.Problem, in.Registry); err != nil {
		return nil, err
	}
	if len(in.Endpoints) > 0 {
		if err := d.addCallParts(); err != nil {
			return nil, err
		}
	}
	return d, nil
}

type builder struct {
	doc  document
	conv *converter
	// payloads holds each channel's converted payload as JSON, to tell a
	// repeated topic from a conflicting one.
	payloads map[string]string
}

// channel adds t's channel, or checks that an existing one is the same topic.
func (b *builder) channel(t Topic) error {
	if err := checkName("topic name", t.Name); err != nil {
		return err
	}
	if err := checkSubject(t.Subject); err != nil {
		return fmt.Errorf("topic %q: %w", t.Name, err)
	}
	var p *payload
	if t.Payload != nil {
		s, err := b.conv.root(t.Payload)
		if err != nil {
			return fmt.Errorf("topic %q: payload: %w", t.Name, err)
		}
		p = &payload{SchemaFormat: schemaFormat, Schema: s}
	}
	pj, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("topic %q: payload: %w", t.Name, err)
	}
	if b.payloads == nil {
		b.payloads = map[string]string{}
	}
	if ch, ok := b.doc.Channels[t.Name]; ok {
		// The same topic again (published and received, or received by two
		// consumers): it must be the same topic.
		switch {
		case *ch.Address != t.Subject:
			return fmt.Errorf("topic %q is declared with two subjects: %q and %q", t.Name, *ch.Address, t.Subject)
		case b.payloads[t.Name] != string(pj):
			return fmt.Errorf("topic %q is declared with two different payloads", t.Name)
		case t.Description != "" && ch.Description != "" && t.Description != ch.Description:
			return fmt.Errorf("topic %q is declared with two different descriptions", t.Name)
		case ch.Description == "":
			ch.Description = t.Description
			ch.Messages[t.Name].(*message).Description = t.Description
		}
		return nil
	}
	b.payloads[t.Name] = string(pj)
	b.doc.Channels[t.Name] = &channel{
		Address:     &t.Subject,
		Description: t.Description,
		Messages: map[string]any{t.Name: &message{
			Name:        t.Name,
			Title:       t.Name,
			Description: t.Description,
			ContentType: contentType,
			Payload:     p,
		}},
	}
	return nil
}

func (b *builder) operation(id, action, topic, consumer string) error {
	if _, ok := b.doc.Operations[id]; ok {
		return fmt.Errorf("operation ID %q is used twice (a topic published twice, or two subscriptions with the same topic and consumer)", id)
	}
	b.doc.Operations[id] = &operation{
		Action:   action,
		Channel:  ref{"#/channels/" + topic},
		Messages: []ref{{"#/channels/" + topic + "/messages/" + topic}},
		Consumer: consumer,
	}
	return nil
}

func checkName(what, name string) error {
	if !namePattern.MatchString(name) {
		if name == "" {
			return fmt.Errorf("%s is empty", what)
		}
		return fmt.Errorf("%s %q may contain only letters, digits, '-' and '_'", what, name)
	}
	return nil
}

// checkSubject accepts a NATS subject that is also a literal AsyncAPI
// channel address (no parameter expressions in braces).
func checkSubject(subject string) error {
	switch {
	case subject == "":
		return fmt.Errorf("subject is empty")
	case strings.ContainsAny(subject, " \t\r\n{}"):
		return fmt.Errorf("subject %q may not contain whitespace or braces", subject)
	case slices.Contains(strings.Split(subject, "."), ""):
		return fmt.Errorf("subject %q has an empty token", subject)
	}
	return nil
}

// servers returns the servers section for a NATS URL or comma-separated
// list of URLs: one server "nats", or "nats-1", "nats-2", ... for a list.
// User information (credentials) is left out.
func servers(raw string) (map[string]server, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, nil
	}
	parts := strings.Split(raw, ",")
	out := make(map[string]server, len(parts))
	for i, p := range parts {
		p = strings.TrimSpace(p)
		s := server{Protocol: "nats"}
		if strings.Contains(p, "://") {
			u, err := url.Parse(p)
			if err != nil {
				return nil, fmt.Errorf("server URL: %w", err)
			}
			switch u.Scheme {
			case "nats", "tls":
			case "ws", "wss":
				s.Protocol = u.Scheme
			default:
				return nil, fmt.Errorf("server URL %q: scheme %q is not nats, tls, ws or wss", u.Redacted(), u.Scheme)
			}
			s.Host = u.Host
			if u.Path != "" && u.Path != "/" {
				s.Pathname = u.Path
			}
		} else {
			// host:port, as NATS clients also accept.
			s.Host = p
			if at := strings.LastIndex(s.Host, "@"); at >= 0 {
				s.Host = s.Host[at+1:]
			}
		}
		if s.Host == "" || strings.ContainsAny(s.Host, " /") {
			return nil, fmt.Errorf("server URL %q has no valid host", redact(p))
		}
		id := "nats"
		if len(parts) > 1 {
			id = fmt.Sprintf("nats-%d", i+1)
		}
		out[id] = s
	}
	return out, nil
}

func redact(s string) string {
	if u, err := url.Parse(s); err == nil && strings.Contains(s, "://") {
		return u.Redacted()
	}
	if at := strings.LastIndex(s, "@"); at >= 0 {
		return "xxxxx" + s[at:]
	}
	return s
}
