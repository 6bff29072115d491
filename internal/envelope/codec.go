package envelope

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
)

// This file is the client side of the envelope: it turns a typed input
// struct (Huma conventions: fields tagged path, query, header, and a Body)
// into a Request the server's parameter binding reads back as the same
// value, and a Response into a typed output struct.

// field is one parameter or body field of an input or output type.
type field struct {
	index      []int
	loc        string // "path", "query", "header", "body", "status", or "whole": the struct is the body
	name       string
	explode    bool
	timeFormat string
}

var plans sync.Map // planKey → []field

// planKey is a type in its role: an input or an output (only an output's
// Status int field is its HTTP status).
type planKey struct {
	t      reflect.Type
	output bool
}

var (
	timeType          = reflect.TypeFor[time.Time]()
	urlType           = reflect.TypeFor[url.URL]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// plan returns the fields of struct type t, cached. A struct with no
// parameter, Body or Status field and some exported field is a body as a
// whole (WholeBody): its plan is the one field "whole".
func plan(t reflect.Type, output bool) []field {
	k := planKey{t, output}
	if p, ok := plans.Load(k); ok {
		return p.([]field)
	}
	var fields []field
	collect(t, nil, output, &fields)
	if len(fields) == 0 && plainStruct(t) {
		fields = []field{{loc: "whole"}}
	}
	plans.Store(k, fields)
	return fields
}

// WholeBody reports whether values of struct type t, as an input or as an
// output, travel as a body as a whole: t has no field tagged path, query,
// header, cookie or form, no Body or RawBody field, no Status int field
// (an output's), and some exported field. An endpoint may take such a
// plain struct as its request body (for a method with a body) and answer
// one as its response body, without Huma's Body wrapper.
func WholeBody(t reflect.Type, output bool) bool {
	if t.Kind() != reflect.Struct {
		return false
	}
	p := plan(t, output)
	return len(p) == 1 && p[0].loc == "whole"
}

// plainStruct reports whether struct type t has some exported field and
// none that Huma binds from elsewhere than a JSON body: cookies, form
// fields, a RawBody (parameters, Body and Status are found by collect).
func plainStruct(t reflect.Type) bool {
	exported := false
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if sf.Anonymous && sf.Type.Kind() == reflect.Struct && !plainStruct(sf.Type) {
			return false
		}
		if sf.Tag.Get("cookie") != "" || sf.Tag.Get("form") != "" || sf.Name == "RawBody" {
			return false
		}
		exported = exported || sf.IsExported()
	}
	return exported
}

func collect(t reflect.Type, index []int, output bool, out *[]field) {
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		idx := append(append([]int(nil), index...), i)
		if sf.Anonymous && sf.Type.Kind() == reflect.Struct && sf.Tag.Get("path")+sf.Tag.Get("query")+sf.Tag.Get("header") == "" {
			collect(sf.Type, idx, output, out)
			continue
		}
		if !sf.IsExported() {
			continue
		}
		f := field{index: idx}
		switch {
		case sf.Tag.Get("path") != "":
			f.loc, f.name = "path", sf.Tag.Get("path")
		case sf.Tag.Get("query") != "":
			parts := strings.Split(sf.Tag.Get("query"), ",")
			f.loc, f.name = "query", parts[0]
			for _, p := range parts[1:] {
				f.explode = f.explode || p == "explode"
			}
		case sf.Tag.Get("header") != "":
			f.loc, f.name = "header", sf.Tag.Get("header")
		case sf.Name == "Body":
			f.loc = "body"
		case output && sf.Name == "Status" && sf.Type.Kind() == reflect.Int:
			f.loc = "status"
		default:
			continue
		}
		f.timeFormat = sf.Tag.Get("timeFormat")
		if f.timeFormat == "" {
			f.timeFormat = time.RFC3339Nano
			if f.loc == "header" {
				f.timeFormat = http.TimeFormat
			}
		}
		*out = append(*out, f)
	}
}

// ErrNotStruct reports an input or output that is not a pointer to a struct.
var ErrNotStruct = errors.New("envelope: not a pointer to a struct")

// EncodeInput returns the Request that carries in, a pointer to an input
// struct. Zero-valued pointers and empty strings are left out, as an HTTP
// client leaves out what it does not send; every other value is sent, so
// the server binds exactly in (defaults apply only to what is absent).
func EncodeInput(in any) (*Request, error) {
	v := reflect.ValueOf(in)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return nil, ErrNotStruct
	}
	v = v.Elem()
	req := &Request{Params: map[string]string{}, Header: http.Header{}}
	query := url.Values{}
	for _, f := range plan(v.Type(), false) {
		if f.loc == "whole" {
			if err := req.setJSONBody(v.Interface()); err != nil {
				return nil, err
			}
			continue
		}
		fv := v.FieldByIndex(f.index)
		if f.loc == "body" {
			if fv.Kind() == reflect.Pointer && fv.IsNil() {
				continue
			}
			if err := req.setJSONBody(fv.Interface()); err != nil {
				return nil, err
			}
			continue
		}
		if f.loc == "status" {
			continue
		}
		values, err := format(fv, f)
		if err != nil {
			return nil, fmt.Errorf("envelope: %s parameter %s: %w", f.loc, f.name, err)
		}
		if values == nil {
			continue
		}
		switch f.loc {
		case "path":
			req.Params[f.name] = strings.Join(values, ",")
		case "query":
			if f.explode {
				query[f.name] = values
			} else {
				query.Set(f.name, strings.Join(values, ","))
			}
		case "header":
			req.Header.Set(f.name, strings.Join(values, ","))
		}
	}
	req.RawQuery = query.Encode()
	return req, nil
}

// setJSONBody makes v, as JSON, the request's body.
func (r *Request) setJSONBody(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("envelope: encode body: %w", err)
	}
	r.Body = b
	r.Header.Set("Content-Type", "application/json")
	return nil
}

// format renders a parameter value as the strings the server parses; nil
// means "absent".
func format(v reflect.Value, f field) ([]string, error) {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil, nil
		}
		v = v.Elem()
	}
	if v.Kind() == reflect.Slice && v.Type().Elem().Kind() != reflect.Uint8 {
		if v.Len() == 0 {
			return nil, nil
		}
		out := make([]string, v.Len())
		for i := range out {
			s, err := scalar(v.Index(i), f)
			if err != nil {
				return nil, err
			}
			out[i] = s
		}
		return out, nil
	}
	s, err := scalar(v, f)
	if err != nil || (s == "" && v.Kind() == reflect.String) {
		return nil, err
	}
	return []string{s}, nil
}

func scalar(v reflect.Value, f field) (string, error) {
	switch v.Type() {
	case timeType:
		return v.Interface().(time.Time).Format(f.timeFormat), nil
	case urlType:
		u := v.Interface().(url.URL)
		return u.String(), nil
	}
	switch v.Kind() {
	case reflect.String:
		return v.String(), nil
	case reflect.Bool:
		return strconv.FormatBool(v.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10), nil
	case reflect.Float32:
		return strconv.FormatFloat(v.Float(), 'g', -1, 32), nil
	case reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64), nil
	}
	if v.CanAddr() && v.Addr().Type().Implements(textMarshalerType) {
		b, err := v.Addr().Interface().(encoding.TextMarshaler).MarshalText()
		return string(b), err
	}
	if v.Type().Implements(textMarshalerType) {
		b, err := v.Interface().(encoding.TextMarshaler).MarshalText()
		return string(b), err
	}
	return "", fmt.Errorf("unsupported type %s", v.Type())
}

// DecodeOutput fills out, a pointer to an output struct, from a successful
// Response: the Body field from the JSON body, header fields from the
// headers (matched case-insensitively), a Status int field from the status.
func DecodeOutput(resp *Response, out any) error {
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return ErrNotStruct
	}
	v = v.Elem()
	for _, f := range plan(v.Type(), true) {
		if f.loc == "whole" {
			if resp.Body.Len() == 0 {
				continue
			}
			if err := json.Unmarshal(resp.Body.Bytes(), v.Addr().Interface()); err != nil {
				return fmt.Errorf("envelope: decode body: %w", err)
			}
			continue
		}
		fv := v.FieldByIndex(f.index)
		switch f.loc {
		case "body":
			if resp.Body.Len() == 0 {
				continue
			}
			if fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Uint8 {
				fv.SetBytes(append([]byte(nil), resp.Body.Bytes()...))
				continue
			}
			if err := json.Unmarshal(resp.Body.Bytes(), fv.Addr().Interface()); err != nil {
				return fmt.Errorf("envelope: decode body: %w", err)
			}
		case "status":
			fv.SetInt(int64(resp.Status))
		case "header":
			raw := resp.Header.Get(f.name)
			if raw == "" {
				continue
			}
			if err := parseInto(fv, raw, f); err != nil {
				return fmt.Errorf("envelope: header %s: %w", f.name, err)
			}
		}
	}
	return nil
}

func parseInto(v reflect.Value, raw string, f field) error {
	if v.Kind() == reflect.Pointer {
		v.Set(reflect.New(v.Type().Elem()))
		v = v.Elem()
	}
	if v.Kind() == reflect.Slice && v.Type().Elem().Kind() != reflect.Uint8 {
		parts := strings.Split(raw, ",")
		s := reflect.MakeSlice(v.Type(), len(parts), len(parts))
		for i, p := range parts {
			if err := parseInto(s.Index(i), strings.TrimSpace(p), f); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	}
	switch v.Type() {
	case timeType:
		t, err := time.Parse(f.timeFormat, raw)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(t))
		return nil
	case urlType:
		u, err := url.Parse(raw)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(*u))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(raw, 10, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(raw, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetFloat(n)
	default:
		if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
			return u.UnmarshalText([]byte(raw))
		}
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}
