package ferry

import (
	"path"
	"reflect"
	"regexp"
	"strings"
	"sync"

	"github.com/danielgtaylor/huma/v2"
)

var majorVersionElem = regexp.MustCompile(`^v[0-9]+$`)

// schemaNamer returns a Huma schema namer that qualifies named types with
// their package, so catalog.Item and orders.Item can live in one document
// (Huma's default drops the package and panics on the clash). A type is
// named after the last element of its import path ("catalog.Item"; a major
// version element joins its parent: "catalogv2.Item"); if two packages
// share that element, the later one gets its whole import path
// ("example.com.shop.catalog.Item"). Unnamed and built-in types keep Huma's
// names.
func schemaNamer() func(reflect.Type, string) string {
	var mu sync.Mutex
	byName := map[string]reflect.Type{}
	return func(t reflect.Type, hint string) string {
		base := huma.DefaultSchemaNamer(t, hint)
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Name() == "" || t.PkgPath() == "" {
			return base
		}
		name := packageLabel(t.PkgPath()) + "." + base
		mu.Lock()
		defer mu.Unlock()
		if prev, ok := byName[name]; ok && prev != t {
			name = strings.ReplaceAll(t.PkgPath(), "/", ".") + "." + base
		}
		byName[name] = t
		return name
	}
}

func packageLabel(pkgPath string) string {
	last := path.Base(pkgPath)
	if majorVersionElem.MatchString(last) {
		if parent := path.Base(path.Dir(pkgPath)); parent != "." && parent != "/" {
			return parent + last
		}
	}
	return last
}

// tolerateRequestBody makes the schemas that op's request body reaches
// accept properties they do not declare (additionalProperties: true),
// which Huma's validation then lets through and the OpenAPI document
// states: a tolerant reader, so a caller that sends a new field does not
// break replicas that do not know it yet. A struct type that says
// otherwise (a `_ struct{} additionalProperties:"false"` field) keeps its
// rule; schemas only responses reach are left as they are.
func tolerateRequestBody(r huma.Registry, op *huma.Operation) {
	if op.RequestBody == nil {
		return
	}
	seen := map[*huma.Schema]bool{}
	for _, mt := range op.RequestBody.Content {
		if mt != nil {
			tolerate(r, mt.Schema, seen)
		}
	}
}

func tolerate(r huma.Registry, s *huma.Schema, seen map[*huma.Schema]bool) {
	if s == nil || seen[s] {
		return
	}
	seen[s] = true
	if s.Ref != "" {
		target := r.SchemaFromRef(s.Ref)
		if target == nil {
			return
		}
		if addl, ok := target.AdditionalProperties.(bool); ok && !addl && !declaresAdditionalProperties(r.TypeFromRef(s.Ref)) {
			target.AdditionalProperties = true
		}
		tolerate(r, target, seen)
		return
	}
	nullableMaps(s)
	for _, p := range s.Properties {
		tolerate(r, p, seen)
	}
	tolerate(r, s.Items, seen)
	if addl, ok := s.AdditionalProperties.(*huma.Schema); ok {
		tolerate(r, addl, seen)
	}
	for _, group := range [][]*huma.Schema{s.OneOf, s.AnyOf, s.AllOf} {
		for _, sub := range group {
			tolerate(r, sub, seen)
		}
	}
	tolerate(r, s.Not, seen)
}

// nullableMaps lets the map-typed properties of s be null: encoding/json
// writes a nil map as null (as it writes a nil slice, which Huma already
// allows), so the zero value of a type must pass its own schema.
func nullableMaps(s *huma.Schema) {
	for _, p := range s.Properties {
		if _, isMap := p.AdditionalProperties.(*huma.Schema); isMap && p.Type == huma.TypeObject && p.Ref == "" && len(p.Properties) == 0 {
			p.Nullable = true
		}
	}
}

// declaresAdditionalProperties reports whether struct type t sets its own
// rule with an additionalProperties tag on a field named _ (Huma's way).
func declaresAdditionalProperties(t reflect.Type) bool {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return false
	}
	f, ok := t.FieldByName("_")
	if !ok {
		return false
	}
	_, ok = f.Tag.Lookup("additionalProperties")
	return ok
}
