package discovery

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/micro"
)

// microSchemaDir holds the micro response schemas natscli validates against,
// copied from github.com/nats-io/jsm.go schemas/micro/v1 (testdata/README.md
// says which version and how to refresh them).
const microSchemaDir = "testdata/micro/v1"

// TestResponsesMatchSchemas validates every answer against jsm.go's JSON
// schemas, the ones `nats micro` checks replies with.
func TestResponsesMatchSchemas(t *testing.T) {
	schemas := map[micro.Verb]any{}
	for verb, file := range map[micro.Verb]string{
		micro.PingVerb: "ping_response.json", micro.InfoVerb: "info_response.json", micro.StatsVerb: "stats_response.json",
	} {
		data, err := os.ReadFile(filepath.Join(microSchemaDir, file))
		if err != nil {
			t.Fatal(err)
		}
		schemas[verb] = decodeJSON(t, data)
	}

	f := newFixture(t)
	f.orders1.Record("create", 1234*time.Microsecond, true, 500, "internal error")
	f.orders1.Record("get", time.Millisecond, false, 404, "not found")
	empty := mustStart(t, f.nc, Info{Name: "empty", Version: "1.0.0"})
	for verb, schema := range schemas {
		for _, target := range []struct{ name, id string }{
			{"orders", f.orders1.ID()}, {"orders", f.orders2.ID()}, {"billing", f.billing.ID()}, {"empty", empty.ID()},
		} {
			t.Run(verb.String()+"/"+target.name+"/"+target.id, func(t *testing.T) {
				data := request(t, f.nc, controlSubject(t, verb, target.name, target.id))
				if errs := validateSchema(schema, decodeJSON(t, data), "$"); len(errs) > 0 {
					t.Errorf("%s does not match the schema:\n%s", data, strings.Join(errs, "\n"))
				}
			})
		}
	}

	// The validator is not vacuous: answers that natscli rejects fail it.
	bad := map[micro.Verb][]string{
		micro.PingVerb: {
			`{"name":"x","id":"i","version":"1.0.0","metadata":{},"type":"io.nats.micro.v1.info_response"}`,
			`{"name":"x.y","id":"i","version":"1.0.0","metadata":{},"type":"io.nats.micro.v1.ping_response"}`,
			`{"name":"x","id":"","version":"1.0","metadata":{"a":1},"type":"io.nats.micro.v1.ping_response"}`,
		},
		micro.InfoVerb: {
			`{"name":"x","id":"i","version":"1.0.0","metadata":{},"type":"io.nats.micro.v1.info_response"}`,
			`{"name":"x","id":"i","version":"1.0.0","type":"io.nats.micro.v1.info_response","description":"","endpoints":[{"name":"e","subject":""}]}`,
		},
		micro.StatsVerb: {
			`{"name":"x","id":"i","version":"1.0.0","metadata":{},"type":"io.nats.micro.v1.stats_response","started":"0001-01-01T00:00:00Z","endpoints":null}`,
			`{"name":"x","id":"i","version":"1.0.0","type":"io.nats.micro.v1.stats_response","started":"yesterday","endpoints":[]}`,
			`{"name":"x","id":"i","version":"1.0.0","type":"io.nats.micro.v1.stats_response","started":"2026-01-01T00:00:00Z","endpoints":[{"name":"e","subject":"s","num_requests":1,"num_errors":0,"last_error":"","processing_time":"1ms","average_processing_time":1.5}]}`,
		},
	}
	for verb, docs := range bad {
		for _, doc := range docs {
			if errs := validateSchema(schemas[verb], decodeJSON(t, []byte(doc)), "$"); len(errs) == 0 {
				t.Errorf("%s schema accepted %s", verb, doc)
			}
		}
	}
}

func decodeJSON(t *testing.T, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return v
}

// validateSchema checks v against a JSON schema, supporting the draft-07
// keywords the micro schemas use. An unsupported keyword is reported as an
// error, so a schema change cannot pass unchecked.
func validateSchema(schema, v any, path string) []string {
	s, ok := schema.(map[string]any)
	if !ok {
		if b, ok := schema.(bool); ok {
			if !b {
				return []string{path + ": schema false"}
			}
			return nil
		}
		return []string{path + ": schema is not an object"}
	}
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, args...)) }
	for key, kw := range s {
		switch key {
		case "$schema", "$id", "$comment", "title", "description":
		case "type":
			types := []string{}
			switch k := kw.(type) {
			case string:
				types = append(types, k)
			case []any:
				for _, x := range k {
					types = append(types, x.(string))
				}
			}
			if !slices.ContainsFunc(types, func(typ string) bool { return hasType(v, typ) }) {
				fail("%v is not of type %v", v, types)
			}
		case "const":
			if !jsonEqual(v, kw) {
				fail("%v is not %v", v, kw)
			}
		case "enum":
			if !slices.ContainsFunc(kw.([]any), func(x any) bool { return jsonEqual(v, x) }) {
				fail("%v is not one of %v", v, kw)
			}
		case "required":
			if obj, ok := v.(map[string]any); ok {
				for _, name := range kw.([]any) {
					if _, ok := obj[name.(string)]; !ok {
						fail("missing required %q", name)
					}
				}
			}
		case "properties":
			if obj, ok := v.(map[string]any); ok {
				for name, sub := range kw.(map[string]any) {
					if x, ok := obj[name]; ok {
						errs = append(errs, validateSchema(sub, x, path+"."+name)...)
					}
				}
			}
		case "additionalProperties":
			if obj, ok := v.(map[string]any); ok {
				props, _ := s["properties"].(map[string]any)
				for name, x := range obj {
					if _, declared := props[name]; !declared {
						errs = append(errs, validateSchema(kw, x, path+"."+name)...)
					}
				}
			}
		case "items":
			if arr, ok := v.([]any); ok {
				for i, x := range arr {
					errs = append(errs, validateSchema(kw, x, fmt.Sprintf("%s[%d]", path, i))...)
				}
			}
		case "oneOf":
			matched := 0
			for _, sub := range kw.([]any) {
				if len(validateSchema(sub, v, path)) == 0 {
					matched++
				}
			}
			if matched != 1 {
				fail("%v matches %d of the oneOf schemas, want exactly 1", v, matched)
			}
		case "pattern":
			if str, ok := v.(string); ok && !regexp.MustCompile(kw.(string)).MatchString(str) {
				fail("%q does not match %s", str, kw)
			}
		case "minLength":
			if str, ok := v.(string); ok && big.NewRat(int64(utf8.RuneCountInString(str)), 1).Cmp(rat(kw)) < 0 {
				fail("%q is shorter than %v", str, kw)
			}
		case "minimum":
			if n, ok := v.(json.Number); ok && rat(n).Cmp(rat(kw)) < 0 {
				fail("%v is below %v", n, kw)
			}
		case "maximum":
			if n, ok := v.(json.Number); ok && rat(n).Cmp(rat(kw)) > 0 {
				fail("%v is above %v", n, kw)
			}
		case "format":
			if str, ok := v.(string); ok && kw == "date-time" {
				if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
					fail("%q is not a date-time: %v", str, err)
				}
			} else if ok {
				fail("unsupported format %v", kw)
			}
		default:
			fail("unsupported schema keyword %q", key)
		}
	}
	return errs
}

func rat(n any) *big.Rat {
	r, ok := new(big.Rat).SetString(string(n.(json.Number)))
	if !ok {
		panic(fmt.Sprintf("not a number: %v", n))
	}
	return r
}

func hasType(v any, typ string) bool {
	switch typ {
	case "null":
		return v == nil
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "number":
		_, ok := v.(json.Number)
		return ok
	case "integer":
		n, ok := v.(json.Number)
		return ok && rat(n).IsInt()
	case "array":
		_, ok := v.([]any)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	}
	return false
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
