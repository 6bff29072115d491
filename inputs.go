package ferry

import (
	"fmt"
	"reflect"
)

// This file checks an endpoint's input type at Handle, against mistakes
// that would otherwise only show at run time, request after request.

// inputFields returns the fields of input type t that Huma considers for
// binding: exported fields, with exported embedded structs flattened; the
// Body and RawBody fields are included as they are, not entered.
func inputFields(t reflect.Type) []reflect.StructField {
	var out []reflect.StructField
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return
		}
		seen[t] = true
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			if f.Anonymous {
				walk(f.Type)
				continue
			}
			out = append(out, f)
		}
	}
	walk(t)
	return out
}

// checkNATSInputs panics if the input type has a part that only HTTP
// carries — a cookie, a form field, the raw body (multipart forms
// included) — unless the endpoint is HTTP-only: over NATS the part would be
// silently absent, where HTTP would have had it.
func checkNATSInputs(service, name string, t reflect.Type) {
	for _, f := range inputFields(t) {
		var what string
		switch {
		case f.Tag.Get("cookie") != "":
			what = fmt.Sprintf("input field %s (cookie %q)", f.Name, f.Tag.Get("cookie"))
		case f.Tag.Get("form") != "":
			what = fmt.Sprintf("input field %s (form %q)", f.Name, f.Tag.Get("form"))
		case f.Name == "RawBody":
			what = "input field RawBody (the raw or multipart body)"
		default:
			continue
		}
		panic(fmt.Sprintf("ferry: Handle %s.%s: %s cannot travel over NATS; set HTTPOnly: true on the Endpoint (bound with Handle) to serve it over HTTP only",
			service, name, what))
	}
}
