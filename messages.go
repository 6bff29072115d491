package ferry

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/danielgtaylor/huma/v2"
)

// messageSchemas holds the JSON Schemas of a service's event payloads, in
// a registry of their own: message schemas accept properties they do not
// know (a tolerant reader, so producers can add fields during a rolling
// deploy), where HTTP bodies reject them.
type messageSchemas struct {
	mu       sync.Mutex
	registry huma.Registry
}

func newMessageSchemas() *messageSchemas {
	return &messageSchemas{registry: huma.NewMapRegistry("#/components/schemas/", schemaNamer())}
}

// schema returns the payload schema of a topic (usually a $ref into the
// registry), registering it tolerantly.
func (m *messageSchemas) schema(d topicDecl) *huma.Schema {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.registry.Schema(d.payload, true, d.name)
	for _, each := range m.registry.Map() {
		if addl, ok := each.AdditionalProperties.(bool); ok && !addl {
			each.AdditionalProperties = nil
		}
		each.PrecomputeMessages()
	}
	s.PrecomputeMessages()
	return s
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
// topic's schema: valid JSON, valid for T's validation tags.
func (m *messageSchemas) validator(d topicDecl) func([]byte) error {
	schema := m.schema(d)
	registry := m.registry
	return func(data []byte) error {
		var raw any
		if err := json.Unmarshal(data, &raw); err != nil {
			return fmt.Errorf("the payload is not JSON: %w", err)
		}
		res := &huma.ValidateResult{}
		huma.Validate(registry, schema, huma.NewPathBuffer(make([]byte, 0, 64), 0), huma.ModeWriteToServer, raw, res)
		if len(res.Errors) > 0 {
			return fmt.Errorf("the payload is not a valid %s: %w", d.payload, errors.Join(res.Errors...))
		}
		return nil
	}
}
