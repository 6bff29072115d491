package ferry

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"sync"

	"github.com/danielgtaylor/huma/v2"
)

// messageSchemas holds the JSON Schemas of a service's event payloads, in
// a registry of their own: message schemas accept properties they do not
// know (a tolerant reader, so producers can add fields during a rolling
// deploy), where HTTP bodies reject them.
//
// A schema is frozen when its topic is declared: declaring a topic makes
// the schemas it adds to the registry tolerant and precomputes their
// error messages, once; nothing writes to them afterwards. Validators read
// a snapshot of the registry taken when their topic was declared, so a
// later declaration, which adds to the registry, never races with a
// running validator, and the AsyncAPI document reads the same frozen
// schemas.
type messageSchemas struct {
	mu       sync.Mutex
	registry huma.Registry // added to only by declare, under mu
	frozen   *frozenRegistry
	payloads map[payloadKey]*huma.Schema

	// doc is the AsyncAPI document last built from these schemas.
	docMu sync.Mutex
	doc   *builtAsyncAPI
}

// payloadKey identifies a topic's payload schema: the topic name is the
// name hint of an unnamed payload type.
type payloadKey struct {
	name string
	typ  reflect.Type
}

func newMessageSchemas() *messageSchemas {
	const prefix = "#/components/schemas/"
	return &messageSchemas{
		registry: huma.NewMapRegistry(prefix, schemaNamer()),
		frozen:   &frozenRegistry{prefix: prefix},
		payloads: map[payloadKey]*huma.Schema{},
	}
}

// schema declares the topic's payload schema and returns it (usually a
// $ref into the registry).
func (m *messageSchemas) schema(d topicDecl) *huma.Schema {
	s, _ := m.declare(d)
	return s
}

// declare registers the topic's payload schema, tolerantly, if it is new,
// and returns it with the registry snapshot that resolves its $refs. Only
// schemas this declaration adds are changed, before anything can read
// them.
func (m *messageSchemas) declare(d topicDecl) (*huma.Schema, *frozenRegistry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := payloadKey{d.name, d.payload}
	if s, ok := m.payloads[k]; ok {
		return s, m.frozen
	}
	s := m.registry.Schema(d.payload, true, d.name)
	added := false
	for name, each := range m.registry.Map() {
		if _, ok := m.frozen.schemas[name]; ok {
			continue
		}
		if addl, ok := each.AdditionalProperties.(bool); ok && !addl {
			each.AdditionalProperties = nil
		}
		each.PrecomputeMessages()
		added = true
	}
	s.PrecomputeMessages() // a $ref, or an inline schema of the topic's own
	if added {
		m.frozen = m.frozen.with(m.registry)
	}
	m.payloads[k] = s
	return s, m.frozen
}

// snapshot returns the registry as of the last declaration.
func (m *messageSchemas) snapshot() *frozenRegistry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.frozen
}

// frozenRegistry is a read-only copy of a registry's schemas: what
// validators and the AsyncAPI document resolve $refs in. It is replaced,
// never modified, when a declaration adds schemas.
type frozenRegistry struct {
	prefix  string
	schemas map[string]*huma.Schema
	types   map[string]reflect.Type
}

var _ huma.Registry = (*frozenRegistry)(nil)

// with returns a snapshot of reg.
func (r *frozenRegistry) with(reg huma.Registry) *frozenRegistry {
	out := &frozenRegistry{prefix: r.prefix, schemas: maps.Clone(reg.Map()), types: map[string]reflect.Type{}}
	for name := range out.schemas {
		out.types[name] = reg.TypeFromRef(r.prefix + name)
	}
	return out
}

// Schema is not supported: a frozen registry takes no new types.
func (r *frozenRegistry) Schema(t reflect.Type, _ bool, _ string) *huma.Schema {
	panic(fmt.Sprintf("ferry: internal error: schema of %s requested from a frozen message registry", t))
}

// SchemaFromRef returns the schema a $ref names, or nil.
func (r *frozenRegistry) SchemaFromRef(ref string) *huma.Schema {
	name, ok := strings.CutPrefix(ref, r.prefix)
	if !ok {
		return nil
	}
	return r.schemas[name]
}

// TypeFromRef returns the Go type of the schema a $ref names, or nil.
func (r *frozenRegistry) TypeFromRef(ref string) reflect.Type {
	return r.types[strings.TrimPrefix(ref, r.prefix)]
}

// Map returns the schemas by name; callers must not modify it.
func (r *frozenRegistry) Map() map[string]*huma.Schema { return r.schemas }

// RegisterTypeAlias is not supported: a frozen registry takes no new types.
func (r *frozenRegistry) RegisterTypeAlias(t, _ reflect.Type) {
	panic(fmt.Sprintf("ferry: internal error: type alias for %s registered in a frozen message registry", t))
}

// payloadDecoder returns the function that decodes a payload of the
// topic into a T after checking it against the topic's schema: valid JSON,
// valid for T's validation tags. It is built once, when the topic is
// declared, and is safe for concurrent use.
func payloadDecoder[T any](m *messageSchemas, d topicDecl) func(data []byte, v *T) error {
	validate := m.validator(d)
	return func(data []byte, v *T) error {
		if err := validate(data); err != nil {
			return err
		}
		return json.Unmarshal(data, v)
	}
}

// validator returns the function that checks a payload against the
// topic's schema: valid JSON, valid for T's validation tags. A payload
// that is JSON but breaks the schema fails with an *invalidPayload. It is
// safe for concurrent use.
func (m *messageSchemas) validator(d topicDecl) func([]byte) error {
	schema, registry := m.declare(d)
	return func(data []byte) error {
		var raw any
		if err := json.Unmarshal(data, &raw); err != nil {
			return fmt.Errorf("the payload is not JSON: %w", err)
		}
		res := &huma.ValidateResult{}
		huma.Validate(registry, schema, huma.NewPathBuffer(make([]byte, 0, 64), 0), huma.ModeWriteToServer, raw, res)
		if len(res.Errors) > 0 {
			return &invalidPayload{typ: d.payload, details: res.Errors}
		}
		return nil
	}
}

// invalidPayload reports a payload that is JSON but breaks its schema.
type invalidPayload struct {
	typ     reflect.Type
	details []error // *huma.ErrorDetail, located from the payload's root
}

func (e *invalidPayload) Error() string {
	return fmt.Sprintf("the payload is not a valid %s: %v", e.typ, errors.Join(e.details...))
}

func (e *invalidPayload) Unwrap() []error { return e.details }

// fieldErrors returns the problems as field errors located under at
// ("event", "events[3]").
func (e *invalidPayload) fieldErrors(at string) []*FieldError {
	out := make([]*FieldError, 0, len(e.details))
	for _, d := range e.details {
		fe := &FieldError{Message: d.Error(), Location: at}
		var detail *huma.ErrorDetail
		if errors.As(d, &detail) {
			fe.Message, fe.Value = detail.Message, detail.Value
			if detail.Location != "" {
				fe.Location = at + "." + detail.Location
			}
		}
		out = append(out, fe)
	}
	return out
}

// topicValidators caches the validator of each topic published with
// [Topic.Publish] or [Topic.PublishBatch] (without a service's
// [Publisher]), by topic name and payload type, so each is compiled once
// per process. Unexported: it holds only what the topics' types determine.
var topicValidators sync.Map // payloadKey → func([]byte) error

// publishValidator returns the validator of a topic published without a
// service's declaration.
func publishValidator(d topicDecl) func([]byte) error {
	k := payloadKey{d.name, d.payload}
	if v, ok := topicValidators.Load(k); ok {
		return v.(func([]byte) error)
	}
	v, _ := topicValidators.LoadOrStore(k, newMessageSchemas().validator(d))
	return v.(func([]byte) error)
}
