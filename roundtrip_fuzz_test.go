package ferry_test

import (
	"context"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/internal/envelope"
	"github.com/ferrygo/ferry/internal/naming"
	"github.com/ferrygo/ferry/internal/natsproto"
)

// RoundTripInput has a field of each kind a client encodes.
type RoundTripInput struct {
	Name  string    `path:"name"`
	ID    int64     `path:"id"`
	Limit int       `query:"limit"`
	Ratio float64   `query:"ratio"`
	On    bool      `query:"on"`
	Tags  []string  `query:"tags"`
	Many  []int     `query:"many,explode"`
	Since time.Time `query:"since"`
	Token string    `header:"X-Token"`
	Body  struct {
		Text string         `json:"text"`
		N    float64        `json:"n"`
		Map  map[string]int `json:"map,omitempty"`
	}
}

// RoundTripOutput carries the input back.
type RoundTripOutput struct {
	Body RoundTripInput
}

// FuzzClientEncoding checks that what a typed client encodes into the NATS
// envelope is what the server's binding reads back: the handler receives
// exactly the client's input.
func FuzzClientEncoding(f *testing.F) {
	f.Add("ann", int64(7), 10, 0.5, true, "a,b", 3, int64(1700000000), "tok", "hello", 1.5, true)
	f.Add("ü/ß?x=1&y", int64(-1), -5, -1e300, false, "", 0, int64(0), "", "", 0.0, false)
	f.Add("%2F..", int64(math.MaxInt64), math.MinInt, math.SmallestNonzeroFloat64, true, "x", -9, int64(-62135596800), "a b\tc", "\u2028<>&", math.Copysign(0, -1), true)

	svc := ferry.MustNew("roundtrip", "1.0.0", quiet)
	ep := ferry.Endpoint[RoundTripInput, RoundTripOutput]{Service: "roundtrip", Name: "echo", Method: "POST", Path: "/rt/{name}/{id}"}
	ferry.Handle(svc, ep, func(_ context.Context, in *RoundTripInput) (*RoundTripOutput, error) {
		return &RoundTripOutput{Body: *in}, nil
	})
	f.Fuzz(func(t *testing.T, name string, id int64, limit int, ratio float64, on bool, tags string, many int, since int64, token, text string, n float64, withOpt bool) {
		if name == "" || !utf8.ValidString(name) || !utf8.ValidString(tags) || !utf8.ValidString(text) || !utf8.ValidString(token) || math.IsNaN(ratio) || math.IsInf(ratio, 0) || math.IsNaN(n) || math.IsInf(n, 0) {
			return // not representable: empty path segment, invalid UTF-8, non-finite numbers
		}
		if !validHeaderValue(token) || strings.TrimSpace(token) != token {
			return // HTTP header values cannot carry these; nor can NATS headers
		}
		in := RoundTripInput{Name: name, ID: id, Limit: limit, Ratio: ratio, On: on, Many: []int{many, -many},
			Since: time.Unix(since%(1<<35), 0).UTC(), Token: token}
		if tags != "" {
			in.Tags = strings.Split(tags, ",") // elements cannot contain a comma: Huma splits on it
			for _, tag := range in.Tags {
				if tag == "" {
					return // empty elements vanish in a comma-joined list
				}
			}
		}
		if withOpt {
			in.Body.Map = map[string]int{text: limit}
		}
		in.Body.Text, in.Body.N = text, n

		req, err := envelope.EncodeInput(&in)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		// Through the NATS message format, then the server's binding.
		m := natsproto.EncodeRequest(naming.EndpointSubject("roundtrip", "echo"), req)
		decoded, err := natsproto.DecodeRequest(m)
		if err != nil {
			t.Fatalf("decode message: %v", err)
		}
		resp := svc.Invoke(context.Background(), "echo", decoded)
		if resp.Status != 200 {
			if resp.Status >= 500 {
				t.Fatalf("server failed: %d %s", resp.Status, resp.Body.String())
			}
			t.Skipf("validation refused a value: %d %s", resp.Status, resp.Body.String())
		}
		var out RoundTripOutput
		if err := envelope.DecodeOutput(resp, &out); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(normalize(in), normalize(out.Body)) {
			a, _ := json.Marshal(in)
			b, _ := json.Marshal(out.Body)
			t.Fatalf("round trip changed the input\nsent: %s\ngot:  %s", a, b)
		}
	})
}

// normalize makes values that mean the same compare equal (-0 and 0).
func normalize(in RoundTripInput) RoundTripInput {
	if in.Ratio == 0 {
		in.Ratio = 0
	}
	if in.Body.N == 0 {
		in.Body.N = 0
	}
	in.Since = in.Since.UTC()
	return in
}
