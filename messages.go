package ferry

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
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
		nullableMaps(each)
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
//
// The check decodes the payload to a generic value for the schema, then
// into a T. When the schema checks nothing json.Unmarshal into T does not
// (see typesOnly), the payload is decoded into T alone; anything that
// fails that way, or that the fast way could let through (null, a number
// too large), takes the full check, so what is accepted, what is rejected
// and the error texts are the same either way.
func payloadDecoder[T any](m *messageSchemas, d topicDecl) func(data []byte, v *T) error {
	validate := m.validator(d)
	checked := func(data []byte, v *T) error {
		if err := validate(data); err != nil {
			return err
		}
		return json.Unmarshal(data, v)
	}
	if !m.typesOnly(d) {
		return checked
	}
	return func(data []byte, v *T) error {
		if !isNull(data) && !mayOverflow(data) && json.Unmarshal(data, v) == nil {
			return nil
		}
		var zero T
		*v = zero
		return checked(data, v)
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

// typesOnly reports whether the topic's payload schema checks nothing that
// json.Unmarshal into the payload type does not check as well, so that a
// payload json.Unmarshal accepts (other than null) the schema accepts too:
// every property optional (a null one is then skipped), no constraint of
// any kind, no arrays or maps (whose null items the schema refuses and
// json.Unmarshal lets through), and a payload type of plain structs,
// scalars, pointers and empty interfaces (no custom unmarshaler, no
// ",string" option, no embedded struct, no two field names equal but for
// case).
func (m *messageSchemas) typesOnly(d topicDecl) bool {
	s, reg := m.declare(d)
	return schemaTypesOnly(s, reg, map[*huma.Schema]bool{}) && goTypesOnly(d.payload, map[reflect.Type]bool{})
}

func schemaTypesOnly(s *huma.Schema, reg huma.Registry, seen map[*huma.Schema]bool) bool {
	for s != nil && s.Ref != "" {
		s = reg.SchemaFromRef(s.Ref)
	}
	switch {
	case s == nil:
		return false
	case seen[s]:
		return true
	}
	seen[s] = true
	if len(s.Required) > 0 || s.Enum != nil || s.Pattern != "" ||
		s.Minimum != nil || s.ExclusiveMinimum != nil || s.Maximum != nil || s.ExclusiveMaximum != nil || s.MultipleOf != nil ||
		s.MinLength != nil || s.MaxLength != nil || s.MinItems != nil || s.MaxItems != nil || s.UniqueItems || s.Items != nil ||
		s.MinProperties != nil || s.MaxProperties != nil || len(s.DependentRequired) > 0 ||
		s.OneOf != nil || s.AnyOf != nil || s.AllOf != nil || s.Not != nil || s.Discriminator != nil {
		return false
	}
	switch s.Type {
	case huma.TypeString:
		// Only strings are checked against their format.
		return s.Format == "" && s.ContentEncoding == "" && len(s.Properties) == 0 && s.AdditionalProperties == nil
	case huma.TypeBoolean, huma.TypeInteger, huma.TypeNumber, "":
		return len(s.Properties) == 0 && s.AdditionalProperties == nil
	case huma.TypeObject:
		if s.AdditionalProperties != nil && s.AdditionalProperties != true {
			return false // a map's value schema
		}
		for _, p := range s.Properties {
			if !schemaTypesOnly(p, reg, seen) {
				return false
			}
		}
		return true
	}
	return false
}

var (
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func goTypesOnly(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return true
	}
	seen[t] = true
	for _, u := range []reflect.Type{t, reflect.PointerTo(t)} {
		if u.Implements(jsonUnmarshalerType) || u.Implements(textUnmarshalerType) {
			return false
		}
	}
	switch t.Kind() {
	case reflect.Bool, reflect.String, reflect.Float32, reflect.Float64,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	case reflect.Pointer:
		return goTypesOnly(t.Elem(), seen)
	case reflect.Interface:
		return t.NumMethod() == 0
	case reflect.Struct:
		var names []string
		for f := range t.Fields() {
			if f.Anonymous {
				return false
			}
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" && opts == "" {
				continue
			}
			if slices.Contains(strings.Split(opts, ","), "string") {
				return false
			}
			if name == "" {
				name = f.Name
			}
			for _, other := range names {
				if strings.EqualFold(name, other) {
					return false
				}
			}
			names = append(names, name)
			if !goTypesOnly(f.Type, seen) {
				return false
			}
		}
		return true
	}
	return false
}

// mayOverflow reports whether data may hold a number too large for a
// float64, which decoding to a generic value refuses but json.Unmarshal
// into a struct skips when no field takes it. Such a number has an
// exponent of three digits or more, or, with a smaller exponent (at most
// 99), more than 200 digits before its decimal point; the test is on the
// bytes, so a string that looks like one only costs the fast path.
func mayOverflow(data []byte) bool {
	digits := 0
	for i, c := range data {
		if c >= '0' && c <= '9' {
			digits++
			if digits > 200 {
				return true
			}
			continue
		}
		digits = 0
		if c != 'e' && c != 'E' {
			continue
		}
		j := i + 1
		if j < len(data) && (data[j] == '+' || data[j] == '-') {
			j++
		}
		k := j
		for k < len(data) && data[k] >= '0' && data[k] <= '9' {
			k++
		}
		if k-j >= 3 {
			return true
		}
	}
	return false
}

// isNull reports whether data is the JSON null, which json.Unmarshal
// accepts for any type and the schema of an object refuses.
func isNull(data []byte) bool {
	return string(bytes.TrimSpace(data)) == "null"
}
