package ferry

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// benchOrder is a flat event with constraints.
type benchOrder struct {
	OrderID  string `json:"order_id" minLength:"1"`
	Quantity int    `json:"quantity" minimum:"1"`
	Note     string `json:"note,omitempty"`
}

// benchPlain is the same event without constraints beyond JSON types.
type benchPlain struct {
	OrderID  string `json:"order_id"`
	Quantity int    `json:"quantity"`
	Note     string `json:"note,omitempty"`
}

type benchCustomer struct {
	ID    string `json:"id" minLength:"1"`
	Email string `json:"email" format:"email"`
	Tier  string `json:"tier" enum:"bronze,silver,gold"`
}

type benchLine struct {
	SKU   string  `json:"sku" pattern:"^[a-z-]+$"`
	Qty   int     `json:"qty" minimum:"1"`
	Price float64 `json:"price" minimum:"0"`
}

// benchCart is a nested event: objects, arrays, formats, enums, patterns.
type benchCart struct {
	OrderID  string        `json:"order_id" minLength:"1"`
	Customer benchCustomer `json:"customer"`
	Items    []benchLine   `json:"items" minItems:"1"`
	Tags     []string      `json:"tags,omitempty"`
	PlacedAt time.Time     `json:"placed_at"`
}

func readPayload(b *testing.B, name string) []byte {
	b.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "events", name))
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func benchDecode[T any](b *testing.B, payload string) {
	data := readPayload(b, payload)
	decode := payloadDecoder[T](newMessageSchemas(), declOf(Topic[T]{Name: "bench", Subject: "bench"}))
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var v T
		if err := decode(data, &v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPayloadDecode measures the consume path's check and decode of
// one payload.
func BenchmarkPayloadDecode(b *testing.B) {
	b.Run("case=flat", func(b *testing.B) { benchDecode[benchOrder](b, "order.json") })
	b.Run("case=flat-unconstrained", func(b *testing.B) { benchDecode[benchPlain](b, "order.json") })
	b.Run("case=nested", func(b *testing.B) { benchDecode[benchCart](b, "cart.json") })
	b.Run("case=types-only", func(b *testing.B) { benchDecode[optionalEvent](b, "optional.json") })
}

// optionalEvent has no constraints beyond JSON types: every field is
// optional, and nothing is checked but types.
type optionalEvent struct {
	ID    string       `json:"id,omitempty"`
	N     int          `json:"n,omitempty"`
	Small int8         `json:"small,omitempty"`
	F     float64      `json:"f,omitempty"`
	F32   float32      `json:"f32,omitempty"`
	B     bool         `json:"b,omitempty"`
	P     *string      `json:"p,omitempty"`
	Sub   *optionalSub `json:"sub,omitempty"`
	Any   any          `json:"any,omitempty"`
	Skip  string       `json:"-"`
	//lint:ignore U1000 an unexported field the decoder must ignore
	plain string
}

type optionalSub struct {
	S string `json:"s,omitempty"`
}

// Types that are not "types only", each for one reason.
type (
	requiredField struct {
		ID string `json:"id"`
	}
	withSlice struct {
		Tags []string `json:"tags,omitempty"`
	}
	withMap struct {
		Attrs map[string]string `json:"attrs,omitempty"`
	}
	withStringOption struct {
		N int `json:"n,omitempty,string"`
	}
	withTime struct {
		At time.Time `json:"at,omitzero"`
	}
	withUnmarshaler struct {
		V lenient `json:"v,omitempty"`
	}
	withFoldedNames struct {
		A string `json:"id,omitempty"`
		B int    `json:"ID,omitempty"`
	}
	withEmbedded struct {
		optionalSub
	}
	withEnum struct {
		Tier string `json:"tier,omitempty" enum:"a,b"`
	}
)

// lenient is a string that also accepts a number.
type lenient string

func (l *lenient) UnmarshalJSON(b []byte) error { *l = lenient(b); return nil }

func typesOnlyOf[T any]() bool {
	m := newMessageSchemas()
	return m.typesOnly(declOf(Topic[T]{Name: "t", Subject: "t"}))
}

func TestTypesOnlyPayloads(t *testing.T) {
	tests := []struct {
		name string
		got  bool
		want bool
	}{
		{"optional scalars, pointers, any", typesOnlyOf[optionalEvent](), true},
		{"a required field", typesOnlyOf[requiredField](), false},
		{"constraints", typesOnlyOf[benchOrder](), false},
		{"required, no constraints", typesOnlyOf[benchPlain](), false},
		{"a slice", typesOnlyOf[withSlice](), false},
		{"a map", typesOnlyOf[withMap](), false},
		{"the string option", typesOnlyOf[withStringOption](), false},
		{"time.Time", typesOnlyOf[withTime](), false},
		{"a custom unmarshaler", typesOnlyOf[withUnmarshaler](), false},
		{"names equal but for case", typesOnlyOf[withFoldedNames](), false},
		{"an embedded struct", typesOnlyOf[withEmbedded](), false},
		{"an enum", typesOnlyOf[withEnum](), false},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: types only = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

// checkedDecode is the reference: the payload decoded to a generic value
// and checked against the schema, then decoded into T.
func checkedDecode[T any](m *messageSchemas, d topicDecl) func([]byte, *T) error {
	validate := m.validator(d)
	return func(data []byte, v *T) error {
		if err := validate(data); err != nil {
			return err
		}
		return json.Unmarshal(data, v)
	}
}

// compareDecoders checks that payloadDecoder accepts and rejects exactly
// what the reference does, with the same error and the same value.
func compareDecoders[T any](t *testing.T, payloads []string) {
	t.Helper()
	m := newMessageSchemas()
	d := declOf(Topic[T]{Name: "t", Subject: "t"})
	decode, reference := payloadDecoder[T](m, d), checkedDecode[T](m, d)
	for _, p := range payloads {
		var got, want T
		gotErr, wantErr := decode([]byte(p), &got), reference([]byte(p), &want)
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Errorf("%T %s: error %v, want %v", got, p, gotErr, wantErr)
		}
		if wantErr == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("%T %s: decoded %+v, want %+v", got, p, got, want)
		}
	}
}

// TestPayloadDecoderRejectsWhatTheSchemaRejects: whichever way a payload
// is decoded, it is accepted, rejected and decoded as the schema check
// followed by json.Unmarshal would.
func TestPayloadDecoderRejectsWhatTheSchemaRejects(t *testing.T) {
	hugeInt := strings.Repeat("9", 250)
	common := []string{
		`{}`, `null`, ` null `, `[]`, `"x"`, `5`, `true`, `{"id":`, `{} x`, ``, `{"id":"\xff"}`,
		`{"x":1e400}`, `{"x":-1e400}`, `{"x":1e-400}`, `{"x":` + hugeInt + `}`, `{"x":` + hugeInt + `e99}`,
		`{"x":[1,{"y":null}],"z":"\u00e9"}`,
	}
	compareDecoders[optionalEvent](t, append(common,
		`{"id":"x","n":1}`, `{"id":5}`, `{"id":null}`, `{"ID":"x"}`, `{"Id":5}`, `{"iD":"x","id":"y"}`,
		`{"id":"x","id":5}`, `{"id":5,"id":"x"}`, `{"id":"x","id":"y"}`,
		`{"n":"1"}`, `{"n":1.5}`, `{"n":1.0}`, `{"n":1e2}`, `{"n":-0}`, `{"n":null}`,
		`{"n":9223372036854775807}`, `{"n":9223372036854775808}`, `{"small":127}`, `{"small":128}`,
		`{"f":1e308}`, `{"f":1e309}`, `{"f":"1"}`, `{"f32":3.4e38}`, `{"f32":3.5e38}`, `{"f32":0.1}`,
		`{"b":true}`, `{"b":"true"}`, `{"b":1}`, `{"b":null}`,
		`{"p":null}`, `{"p":"x"}`, `{"p":1}`,
		`{"sub":{"s":"x"}}`, `{"sub":{"s":5}}`, `{"sub":null}`, `{"sub":[]}`, `{"sub":"x"}`, `{"sub":{"s":"x"},"sub":{"t":1}}`,
		`{"any":[1,{"a":null}]}`, `{"any":1e400}`, `{"any":null}`, `{"any":{"n":1.5}}`,
		`{"Skip":"x","plain":"y","-":1}`,
	))
	// The types that must take the full check, each with payloads a decode
	// into T alone would let through.
	compareDecoders[requiredField](t, append(common, `{"id":"x"}`, `{"id":null}`, `{"ID":"x"}`))
	compareDecoders[withSlice](t, append(common, `{"tags":["a"]}`, `{"tags":[null]}`, `{"tags":null}`))
	compareDecoders[withMap](t, append(common, `{"attrs":{"a":"b"}}`, `{"attrs":{"a":null}}`))
	compareDecoders[withStringOption](t, append(common, `{"n":"1"}`, `{"n":1}`))
	compareDecoders[withUnmarshaler](t, append(common, `{"v":"x"}`, `{"v":5}`))
	compareDecoders[withFoldedNames](t, append(common, `{"id":"x"}`, `{"Id":"x"}`, `{"Id":5}`))
	compareDecoders[withEmbedded](t, append(common, `{"s":"x"}`, `{"s":5}`))
	compareDecoders[withEnum](t, append(common, `{"tier":"a"}`, `{"tier":"c"}`))
	compareDecoders[benchOrder](t, append(common,
		`{"order_id":"o","quantity":1}`, `{"order_id":"","quantity":1}`, `{"order_id":"o","quantity":0}`,
		`{"order_id":"o"}`, `{"order_id":"o","quantity":null}`, `{"ORDER_ID":"o","quantity":1}`,
		`{"order_id":"o","quantity":1.0}`, `{"order_id":"o","quantity":"1"}`,
	))
	compareDecoders[benchCart](t, append(common,
		`{"order_id":"o","customer":{"id":"c","email":"a@b.c","tier":"gold"},"items":[{"sku":"a","qty":1,"price":1}],"placed_at":"2026-11-30T10:15:00Z"}`,
		`{"order_id":"o","customer":{"id":"c","email":"nope","tier":"gold"},"items":[{"sku":"a","qty":1,"price":1}],"placed_at":"2026-11-30T10:15:00Z"}`,
		`{"order_id":"o","customer":{"id":"c","email":"a@b.c","tier":"gold"},"items":[],"placed_at":"2026-11-30T10:15:00Z"}`,
		`{"order_id":"o","customer":{"id":"c","email":"a@b.c","tier":"gold"},"items":[null],"placed_at":"2026-11-30T10:15:00Z"}`,
	))
}

// FuzzPayloadDecoder: an event payload off the wire never panics the
// decoder, and the single-decode path for types-only payloads accepts,
// rejects and decodes exactly what the full schema check does.
func FuzzPayloadDecoder(f *testing.F) {
	for _, seed := range []string{`{}`, `null`, `{"id":"x","n":1}`, `{"id":5}`, `{"n":1e400}`, `{"sub":{"s":"x"}}`,
		`{"order_id":"o","quantity":1}`, `{"order_id":"","quantity":0}`, `[]`, `{"id":"x","id":5}`} {
		f.Add([]byte(seed))
	}
	m := newMessageSchemas()
	fast, fastRef := payloadDecoder[optionalEvent](m, declOf(Topic[optionalEvent]{Name: "opt", Subject: "opt"})),
		checkedDecode[optionalEvent](m, declOf(Topic[optionalEvent]{Name: "opt", Subject: "opt"}))
	full := payloadDecoder[benchOrder](m, declOf(Topic[benchOrder]{Name: "order", Subject: "order"}))
	f.Fuzz(func(t *testing.T, data []byte) {
		var got, want optionalEvent
		gotErr, wantErr := fast(data, &got), fastRef(data, &want)
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Fatalf("%q: error %v, want %v", data, gotErr, wantErr)
		}
		if wantErr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: decoded %+v, want %+v", data, got, want)
		}
		var order benchOrder
		_ = full(data, &order)
	})
}
