package asyncapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/danielgtaylor/huma/v2"
)

// converter turns Huma's JSON Schema 2020-12 schemas into draft-07 and
// collects every registry schema they reach, for components.schemas.
type converter struct {
	reg huma.Registry
	// names maps a registry $ref to its component name; owners maps a
	// component name back to the $ref, to catch two refs on one name.
	names  map[string]string
	owners map[string]string
	queue  []string // refs whose schema has not been converted yet
}

func newConverter(reg huma.Registry) *converter {
	return &converter{reg: reg, names: map[string]string{}, owners: map[string]string{}}
}

// root converts a payload schema (typically a bare $ref).
func (c *converter) root(s *huma.Schema) (any, error) {
	tree, err := toTree(s)
	if err != nil {
		return nil, err
	}
	return c.schema(tree, "#")
}

// components converts every schema reachable from the roots converted so
// far, transitively, and returns them by component name.
func (c *converter) components() (map[string]any, error) {
	out := map[string]any{}
	for len(c.queue) > 0 {
		r := c.queue[0]
		c.queue = c.queue[1:]
		name := c.names[r]
		s := c.reg.SchemaFromRef(r)
		tree, err := toTree(s)
		if err != nil {
			return nil, fmt.Errorf("schema %q: %w", name, err)
		}
		conv, err := c.schema(tree, componentsPrefix+name)
		if err != nil {
			return nil, fmt.Errorf("schema %q: %w", name, err)
		}
		out[name] = conv
	}
	return out, nil
}

// toTree returns s as a JSON value tree (maps, slices, json.Number...),
// as Huma marshals it.
func toTree(s *huma.Schema) (any, error) {
	js, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, err
	}
	return tree, nil
}

// ref returns the document $ref for a registry $ref, queueing the schema
// for components.schemas the first time it is seen.
func (c *converter) ref(r string) (string, error) {
	if name, ok := c.names[r]; ok {
		return componentsPrefix + name, nil
	}
	if c.reg == nil {
		return "", fmt.Errorf("$ref %q: no registry to resolve it", r)
	}
	if c.reg.SchemaFromRef(r) == nil {
		return "", fmt.Errorf("$ref %q is not in the registry", r)
	}
	// The registry's name is what follows the last '/' of the ref (JSON
	// pointer escapes undone); characters a component key may not hold
	// become '_'.
	name := r[strings.LastIndex(r, "/")+1:]
	name = strings.NewReplacer("~1", "/", "~0", "~").Replace(name)
	name = componentNameInvalid.ReplaceAllString(name, "_")
	if name == "" {
		return "", fmt.Errorf("$ref %q has no schema name", r)
	}
	if prev, ok := c.owners[name]; ok {
		return "", fmt.Errorf("$refs %q and %q both become component %q", prev, r, name)
	}
	c.names[r] = name
	c.owners[name] = r
	c.queue = append(c.queue, r)
	return componentsPrefix + name, nil
}

// dropped lists the 2020-12 keywords draft-07 has no counterpart for (or
// that would change how the document's $refs resolve).
var dropped = map[string]bool{
	"$schema":               true,
	"$id":                   true,
	"$anchor":               true,
	"$dynamicAnchor":        true,
	"$dynamicRef":           true,
	"$vocabulary":           true,
	"unevaluatedProperties": true,
	"unevaluatedItems":      true,
	"contentSchema":         true,
	"minContains":           true,
	"maxContains":           true,
}

// Keywords whose values are schemas, by shape.
var (
	schemaKeys = map[string]bool{
		"additionalProperties": true, "additionalItems": true, "contains": true,
		"propertyNames": true, "not": true, "if": true, "then": true, "else": true,
	}
	schemaListKeys = map[string]bool{"allOf": true, "anyOf": true, "oneOf": true, "prefixItems": true}
	schemaMapKeys  = map[string]bool{
		"properties": true, "patternProperties": true, "$defs": true,
		"definitions": true, "dependentSchemas": true,
	}
)

// schema converts one schema (a JSON value tree) from 2020-12 to draft-07.
// at names its place, for errors.
func (c *converter) schema(v any, at string) (any, error) {
	var s map[string]any
	switch v := v.(type) {
	case bool:
		return v, nil
	case map[string]any:
		s = v
	default:
		return nil, fmt.Errorf("%s: a schema must be an object or a boolean, not %T", at, v)
	}
	out := make(map[string]any, len(s))
	// deps gathers dependentRequired, dependentSchemas and dependencies.
	deps := map[string][]any{}
	for _, k := range slices.Sorted(maps.Keys(s)) {
		val := s[k]
		where := at + "/" + k
		switch {
		case dropped[k], k == "$ref":
		case schemaKeys[k]:
			conv, err := c.schema(val, where)
			if err != nil {
				return nil, err
			}
			out[k] = conv
		case k == "items":
			// A schema, or (draft 2019 and earlier) an array of schemas.
			if list, ok := val.([]any); ok {
				conv, err := c.schemaList(list, where)
				if err != nil {
					return nil, err
				}
				out[k] = conv
				continue
			}
			conv, err := c.schema(val, where)
			if err != nil {
				return nil, err
			}
			out[k] = conv
		case schemaListKeys[k]:
			list, ok := val.([]any)
			if !ok {
				return nil, fmt.Errorf("%s: must be an array of schemas", where)
			}
			conv, err := c.schemaList(list, where)
			if err != nil {
				return nil, err
			}
			out[k] = conv
		case schemaMapKeys[k]:
			m, ok := val.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: must be an object of schemas", where)
			}
			conv := make(map[string]any, len(m))
			for _, name := range slices.Sorted(maps.Keys(m)) {
				cs, err := c.schema(m[name], where+"/"+name)
				if err != nil {
					return nil, err
				}
				conv[name] = cs
			}
			if k == "dependentSchemas" {
				for name, cs := range conv {
					deps[name] = append(deps[name], cs)
				}
				continue
			}
			out[k] = conv
		case k == "dependentRequired":
			m, ok := val.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: must be an object of arrays", where)
			}
			for name, req := range m {
				if _, ok := req.([]any); !ok {
					return nil, fmt.Errorf("%s/%s: must be an array of property names", where, name)
				}
				deps[name] = append(deps[name], req)
			}
		case k == "dependencies":
			m, ok := val.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: must be an object", where)
			}
			for _, name := range slices.Sorted(maps.Keys(m)) {
				d := m[name]
				if _, ok := d.([]any); !ok {
					cs, err := c.schema(d, where+"/"+name)
					if err != nil {
						return nil, err
					}
					d = cs
				}
				deps[name] = append(deps[name], d)
			}
		case k == "discriminator":
			// OpenAPI's {propertyName, mapping} object; AsyncAPI's schema
			// wants the property name as a string.
			switch d := val.(type) {
			case string:
				out[k] = d
			case map[string]any:
				if name, ok := d["propertyName"].(string); ok && name != "" {
					out[k] = name
				}
			}
		default:
			// Annotations, validation keywords and extensions: data.
			out[k] = val
		}
	}

	// $defs -> definitions.
	if defs, ok := out["$defs"]; ok {
		delete(out, "$defs")
		if _, both := out["definitions"]; both {
			return nil, fmt.Errorf("%s: has both $defs and definitions", at)
		}
		out["definitions"] = defs
	}

	// prefixItems -> items (array form); the items that followed the prefix
	// -> additionalItems.
	if prefix, ok := out["prefixItems"]; ok {
		delete(out, "prefixItems")
		if rest, ok := out["items"]; ok {
			out["additionalItems"] = rest
		}
		out["items"] = prefix
	}

	// dependentRequired, dependentSchemas -> dependencies.
	if len(deps) > 0 {
		dm := make(map[string]any, len(deps))
		for name, list := range deps {
			if len(list) == 1 {
				dm[name] = list[0]
				continue
			}
			all := make([]any, len(list))
			for i, d := range list {
				if req, ok := d.([]any); ok {
					d = map[string]any{"required": req}
				}
				all[i] = d
			}
			dm[name] = map[string]any{"allOf": all}
		}
		out["dependencies"] = dm
	}

	// $ref -> the component; draft-07 ignores keywords beside a $ref, so
	// they keep their meaning only next to an allOf holding it.
	if r, ok := s["$ref"]; ok {
		rs, ok := r.(string)
		if !ok {
			return nil, fmt.Errorf("%s/$ref: must be a string", at)
		}
		target, err := c.ref(rs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", at, err)
		}
		refSchema := map[string]any{"$ref": target}
		if len(out) == 0 {
			return refSchema, nil
		}
		all, _ := out["allOf"].([]any)
		out["allOf"] = append([]any{refSchema}, all...)
	}
	return out, nil
}

func (c *converter) schemaList(list []any, at string) ([]any, error) {
	out := make([]any, len(list))
	for i, v := range list {
		conv, err := c.schema(v, fmt.Sprintf("%s/%d", at, i))
		if err != nil {
			return nil, err
		}
		out[i] = conv
	}
	return out, nil
}
