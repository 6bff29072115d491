package ferry

import (
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
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

// paramTags are the struct tags that bind an input field to a part of the
// request other than the body.
var paramTags = []string{"path", "query", "header", "cookie", "form"}

func isParam(f reflect.StructField) bool {
	for _, tag := range paramTags {
		if f.Tag.Get(tag) != "" {
			return true
		}
	}
	return false
}

// checkUnboundJSON panics if an input type without a Body field has
// json-tagged fields that no parameter tag binds: Huma reads only the Body
// field from the body, so such fields would stay zero whatever the caller
// sent.
func checkUnboundJSON(service, name, method string, t reflect.Type) {
	if _, ok := t.FieldByName("Body"); ok {
		return
	}
	var unbound []string
	for _, f := range inputFields(t) {
		if tag, ok := f.Tag.Lookup("json"); ok && tag != "-" && !isParam(f) {
			unbound = append(unbound, f.Name)
		}
	}
	if len(unbound) == 0 {
		return
	}
	fields, them, are := "input field "+unbound[0], "it", "is"
	if len(unbound) > 1 {
		fields, them, are = "input fields "+strings.Join(unbound, ", "), "them", "are"
	}
	fix := "put " + them + " in a Body field"
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodDelete, http.MethodOptions:
		fix = "tag " + them + ` query:"…" (or path, header), or put ` + them + " in a Body field"
	}
	panic(fmt.Sprintf("ferry: Handle %s.%s: %s %s tagged json, but nothing fills %s: only a field named Body is read from the request body; %s",
		service, name, fields, are, them, fix))
}

// checkPathParams panics unless the path template's parameters and the
// input's path-tagged fields are the same set: a template parameter no
// field binds is lost, and a field the template lacks is a required
// parameter no request can give (a 422 every time).
func checkPathParams(service, name, path string, t reflect.Type) {
	inTemplate := map[string]bool{}
	for rest := path; ; {
		_, after, ok := strings.Cut(rest, "{")
		if !ok {
			break
		}
		param, next, ok := strings.Cut(after, "}")
		if !ok {
			break
		}
		rest = next
		if param = strings.TrimSuffix(param, "..."); param != "$" && param != "" {
			inTemplate[param] = true
		}
	}
	var problems []string
	bound := map[string]bool{}
	for _, f := range inputFields(t) {
		p := f.Tag.Get("path")
		if p == "" {
			continue
		}
		bound[p] = true
		if !inTemplate[p] {
			problems = append(problems, fmt.Sprintf("input field %s (path %q) binds a parameter the path lacks", f.Name, p))
		}
	}
	var missing []string
	for p := range inTemplate {
		if !bound[p] {
			missing = append(missing, p)
		}
	}
	slices.Sort(missing)
	for _, p := range missing {
		problems = append(problems, fmt.Sprintf("no input field binds parameter {%s} (tag one path:%q)", p, p))
	}
	if len(problems) > 0 {
		panic(fmt.Sprintf("ferry: Handle %s.%s: path %s and the input type disagree: %s", service, name, path, strings.Join(problems, "; ")))
	}
}
