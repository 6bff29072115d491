package asyncapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ferrygo/ferry/internal/asyncapi"
	"github.com/ferrygo/ferry/internal/asyncapi/internal/fixture/catalog"
	"github.com/ferrygo/ferry/internal/asyncapi/internal/fixture/orders"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.json and testdata/golden.yaml")

// namer qualifies named types with their package ("catalog.Item",
// "orders.Item"), as Ferry's own namer does.
func namer(t reflect.Type, hint string) string {
	base := huma.DefaultSchemaNamer(t, hint)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Name() == "" || t.PkgPath() == "" {
		return base
	}
	return path.Base(t.PkgPath()) + "." + base
}

func schemaOf[T any](reg huma.Registry) *huma.Schema {
	return reg.Schema(reflect.TypeFor[T](), true, "")
}

// goldenInfo is a service that publishes two topics and receives one.
func goldenInfo() asyncapi.Info {
	reg := huma.NewMapRegistry("#/components/schemas/", namer)
	return asyncapi.Info{
		Title:       "orders",
		Version:     "1.2.0",
		Description: "Takes orders and tells the world.",
		Server:      "nats://localhost:4222",
		Publishes: []asyncapi.Topic{
			{
				Name:        "order-placed",
				Subject:     "orders.placed",
				Description: "An order was placed.",
				Payload:     schemaOf[orders.OrderPlaced](reg),
			},
			{
				Name:    "order-cancelled",
				Subject: "orders.cancelled",
				Payload: schemaOf[orders.OrderCancelled](reg),
			},
		},
		Subscribes: []asyncapi.Subscription{{
			Topic: asyncapi.Topic{
				Name:        "catalog-item-updated",
				Subject:     "catalog.items.updated",
				Description: "A catalog item changed.",
				Payload:     schemaOf[catalog.ItemUpdated](reg),
			},
			Consumer: "orders-stock",
		}},
		Endpoints: []asyncapi.Endpoint{
			{
				Service:     "orders",
				Name:        "place-order",
				Subject:     "ferry.orders.place-order",
				Summary:     "Place an order",
				Description: "Places an order and answers its ID.",
				Request:     schemaOf[orders.PlaceOrder](reg),
				Response:    schemaOf[orders.Placed](reg),
			},
			{
				// No request body (a GET).
				Service:  "orders",
				Name:     "get-order",
				Subject:  "ferry.orders.get-order",
				Response: schemaOf[orders.OrderPlaced](reg),
			},
		},
		Problem:  schemaOf[orders.Problem](reg),
		Registry: reg,
	}
}

// goldenCalls are calls the golden service was seen making: one to
// another service, one to an endpoint of its own.
func goldenCalls() []asyncapi.Call {
	return []asyncapi.Call{
		{Service: "catalog", Name: "get-product", Subject: "ferry.catalog.get-product"},
		{Service: "orders", Name: "get-order", Subject: "ferry.orders.get-order"},
	}
}

func build(t *testing.T, info asyncapi.Info) (js, yml []byte) {
	t.Helper()
	doc, err := asyncapi.Build(info)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	js, err = doc.JSON()
	if err != nil {
		t.Fatalf("JSON: %v", err)
	}
	yml, err = doc.YAML()
	if err != nil {
		t.Fatalf("YAML: %v", err)
	}
	return js, yml
}

func TestGolden(t *testing.T) {
	js, yml := build(t, goldenInfo())
	for _, f := range []struct {
		name string
		got  []byte
	}{
		{"golden.json", js},
		{"golden.yaml", yml},
	} {
		file := filepath.Join("testdata", f.name)
		if *update {
			if err := os.WriteFile(file, f.got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("%v (run go test ./internal/asyncapi -update)", err)
		}
		if !bytes.Equal(f.got, want) {
			t.Errorf("%s differs from the built document (run go test ./internal/asyncapi -update and review the diff); got:\n%s", file, f.got)
		}
	}
}

// TestGoldenContent checks the parts of the golden document the API
// promises, independently of the golden file.
func TestGoldenContent(t *testing.T) {
	js, _ := build(t, goldenInfo())
	doc := decode(t, js)

	for _, c := range []struct {
		path []string
		want any
	}{
		{[]string{"asyncapi"}, "3.0.0"},
		{[]string{"defaultContentType"}, "application/json"},
		{[]string{"info", "title"}, "orders"},
		{[]string{"servers", "nats", "host"}, "localhost:4222"},
		{[]string{"servers", "nats", "protocol"}, "nats"},
		{[]string{"channels", "order-placed", "address"}, "orders.placed"},
		{[]string{"channels", "order-placed", "messages", "order-placed", "name"}, "order-placed"},
		{[]string{"channels", "order-placed", "messages", "order-placed", "contentType"}, "application/json"},
		{[]string{"channels", "order-placed", "messages", "order-placed", "payload", "schemaFormat"}, "application/schema+json;version=draft-07"},
		{[]string{"channels", "order-placed", "messages", "order-placed", "payload", "schema", "$ref"}, "#/components/schemas/orders.OrderPlaced"},
		{[]string{"operations", "publish-order-placed", "action"}, "send"},
		{[]string{"operations", "publish-order-placed", "channel", "$ref"}, "#/channels/order-placed"},
		{[]string{"operations", "publish-order-cancelled", "action"}, "send"},
		{[]string{"operations", "receive-catalog-item-updated-orders-stock", "action"}, "receive"},
		{[]string{"operations", "receive-catalog-item-updated-orders-stock", "channel", "$ref"}, "#/channels/catalog-item-updated"},
		{[]string{"components", "schemas", "orders.Item", "properties", "product", "allOf", "0", "$ref"}, "#/components/schemas/catalog.Item"},
		{[]string{"components", "schemas", "orders.OrderPlaced", "properties", "items", "items", "$ref"}, "#/components/schemas/orders.Item"},
		{[]string{"components", "schemas", "orders.OrderPlaced", "properties", "placedAt", "format"}, "date-time"},
		{[]string{"components", "schemas", "orders.OrderPlaced", "properties", "orderId", "pattern"}, "^ord_[a-z0-9]+$"},
	} {
		if got := at(doc, c.path...); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s = %#v, want %#v", strings.Join(c.path, "."), got, c.want)
		}
	}
	msgs := at(doc, "operations", "receive-catalog-item-updated-orders-stock", "messages")
	want := []any{map[string]any{"$ref": "#/channels/catalog-item-updated/messages/catalog-item-updated"}}
	if !reflect.DeepEqual(msgs, want) {
		t.Errorf("receive operation messages = %#v, want %#v", msgs, want)
	}

	// Every schema reachable from the payloads, and only those.
	schemas, _ := at(doc, "components", "schemas").(map[string]any)
	var names []string
	for name := range schemas {
		names = append(names, name)
	}
	wantNames := []string{"catalog.Item", "catalog.ItemUpdated", "orders.Address", "orders.Item", "orders.OrderCancelled", "orders.OrderPlaced",
		"orders.PlaceOrder", "orders.Placed", "orders.Problem", "ferry-request-headers", "ferry-reply-headers"}
	if !equalSorted(names, wantNames) {
		t.Errorf("components.schemas = %v, want %v", names, wantNames)
	}
	if bytes.Contains(js, []byte(`"$schema"`)) {
		t.Errorf("document has a $schema keyword")
	}
}

func TestDeterministic(t *testing.T) {
	js1, yml1 := build(t, goldenInfo())
	js2, yml2 := build(t, goldenInfo())
	if !bytes.Equal(js1, js2) || !bytes.Equal(yml1, yml2) {
		t.Fatal("two builds of one service differ")
	}
	// Schemas registered in another order, topics listed in another order:
	// the same document.
	info := goldenInfo()
	reg := huma.NewMapRegistry("#/components/schemas/", namer)
	schemaOf[catalog.ItemUpdated](reg)
	schemaOf[orders.OrderCancelled](reg)
	info.Registry = reg
	info.Publishes[0].Payload = schemaOf[orders.OrderPlaced](reg)
	info.Publishes[1].Payload = schemaOf[orders.OrderCancelled](reg)
	info.Subscribes[0].Topic.Payload = schemaOf[catalog.ItemUpdated](reg)
	info.Endpoints[0].Request = schemaOf[orders.PlaceOrder](reg)
	info.Endpoints[0].Response = schemaOf[orders.Placed](reg)
	info.Endpoints[1].Response = schemaOf[orders.OrderPlaced](reg)
	info.Problem = schemaOf[orders.Problem](reg)
	info.Endpoints[0], info.Endpoints[1] = info.Endpoints[1], info.Endpoints[0]
	info.Publishes[0], info.Publishes[1] = info.Publishes[1], info.Publishes[0]
	js3, yml3 := build(t, info)
	if !bytes.Equal(js1, js3) || !bytes.Equal(yml1, yml3) {
		t.Fatalf("order of registration or of topics changed the document:\n%s", js3)
	}
}

func TestJSONFormat(t *testing.T) {
	js, yml := build(t, goldenInfo())
	if !bytes.HasSuffix(js, []byte("}\n")) || !bytes.HasPrefix(js, []byte("{\n  \"asyncapi\": \"3.0.0\",\n")) {
		t.Errorf("JSON is not indented 2 spaces with a trailing newline:\n%.80s", js)
	}
	if !bytes.HasPrefix(yml, []byte("asyncapi: 3.0.0\n")) || !bytes.HasSuffix(yml, []byte("\n")) {
		t.Errorf("unexpected YAML start or end:\n%.80s", yml)
	}
}

func TestEmptyDocument(t *testing.T) {
	js, _ := build(t, asyncapi.Info{Title: "idle", Version: "0.1.0"})
	doc := decode(t, js)
	for _, k := range []string{"channels", "operations"} {
		if m, ok := doc[k].(map[string]any); !ok || len(m) != 0 {
			t.Errorf("%s = %#v, want an empty object", k, doc[k])
		}
	}
	for _, k := range []string{"components", "servers"} {
		if _, ok := doc[k]; ok {
			t.Errorf("empty document has %s", k)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	reg := huma.NewMapRegistry("#/components/schemas/", namer)
	ok := asyncapi.Topic{Name: "order-placed", Subject: "orders.placed", Payload: schemaOf[orders.OrderPlaced](reg)}
	base := func() asyncapi.Info { return asyncapi.Info{Title: "t", Version: "1.0.0", Registry: reg} }
	with := func(f func(*asyncapi.Info)) asyncapi.Info { i := base(); f(&i); return i }
	other := ok
	other.Subject = "orders.other"

	for name, c := range map[string]struct {
		info asyncapi.Info
		want string
	}{
		"topic name with a dot": {with(func(i *asyncapi.Info) {
			i.Publishes = []asyncapi.Topic{{Name: "orders.placed", Subject: "orders.placed"}}
		}), `topic name "orders.placed"`},
		"empty topic name": {with(func(i *asyncapi.Info) {
			i.Publishes = []asyncapi.Topic{{Subject: "orders.placed"}}
		}), "topic name is empty"},
		"subscribed topic name with a space": {with(func(i *asyncapi.Info) {
			i.Subscribes = []asyncapi.Subscription{{Topic: asyncapi.Topic{Name: "order placed", Subject: "orders.placed"}, Consumer: "c"}}
		}), `topic name "order placed"`},
		"consumer name": {with(func(i *asyncapi.Info) {
			i.Subscribes = []asyncapi.Subscription{{Topic: ok, Consumer: "a.b"}}
		}), `consumer name "a.b"`},
		"empty subject": {with(func(i *asyncapi.Info) {
			i.Publishes = []asyncapi.Topic{{Name: "x"}}
		}), "subject is empty"},
		"subject with a parameter": {with(func(i *asyncapi.Info) {
			i.Publishes = []asyncapi.Topic{{Name: "x", Subject: "orders.{id}"}}
		}), "braces"},
		"two subjects for a topic": {with(func(i *asyncapi.Info) {
			i.Publishes = []asyncapi.Topic{ok}
			i.Subscribes = []asyncapi.Subscription{{Topic: other, Consumer: "c"}}
		}), "two subjects"},
		"published twice": {with(func(i *asyncapi.Info) {
			i.Publishes = []asyncapi.Topic{ok, ok}
		}), `"publish-order-placed" is used twice`},
		"unresolved ref": {with(func(i *asyncapi.Info) {
			i.Publishes = []asyncapi.Topic{{Name: "x", Subject: "x", Payload: &huma.Schema{Ref: "#/components/schemas/Nope"}}}
		}), `"#/components/schemas/Nope" is not in the registry`},
		"no registry": {asyncapi.Info{Title: "t", Version: "1", Publishes: []asyncapi.Topic{ok}}, "no registry"},
		"no title":    {asyncapi.Info{Version: "1"}, "title is empty"},
		"bad server":  {asyncapi.Info{Title: "t", Version: "1", Server: "http://user:secret@host:80"}, `scheme "http"`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := asyncapi.Build(c.info)
			if err == nil {
				t.Fatal("Build succeeded")
			}
			if !strings.HasPrefix(err.Error(), "asyncapi: ") || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want one starting with %q and containing %q", err, "asyncapi: ", c.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q shows a password", err)
			}
		})
	}
}

func TestTopicBothWays(t *testing.T) {
	// A topic the service publishes and receives (and receives twice) is
	// one channel with three operations.
	info := goldenInfo()
	placed := info.Publishes[0]
	info.Subscribes = append(info.Subscribes,
		asyncapi.Subscription{Topic: placed, Consumer: "audit"},
		asyncapi.Subscription{Topic: placed, Consumer: "mailer"})
	js, _ := build(t, info)
	doc := decode(t, js)
	for _, id := range []string{"publish-order-placed", "receive-order-placed-audit", "receive-order-placed-mailer"} {
		if got := at(doc, "operations", id, "channel", "$ref"); got != "#/channels/order-placed" {
			t.Errorf("%s channel = %v", id, got)
		}
	}
	if got := len(doc["channels"].(map[string]any)); got != 3+4 {
		t.Errorf("%d channels, want 3 topics' and 4 of 2 endpoints", got)
	}
}

func TestServers(t *testing.T) {
	for _, c := range []struct {
		url  string
		want map[string]any
	}{
		{"nats://user:pw@nats.example:4222", map[string]any{"nats": map[string]any{"host": "nats.example:4222", "protocol": "nats"}}},
		{"tls://a:4222, wss://b:443/ws", map[string]any{
			"nats-1": map[string]any{"host": "a:4222", "protocol": "nats"},
			"nats-2": map[string]any{"host": "b:443", "protocol": "wss", "pathname": "/ws"},
		}},
		{"token@localhost:4222", map[string]any{"nats": map[string]any{"host": "localhost:4222", "protocol": "nats"}}},
	} {
		js, _ := build(t, asyncapi.Info{Title: "t", Version: "1", Server: c.url})
		if got := decode(t, js)["servers"]; !reflect.DeepEqual(got, c.want) {
			t.Errorf("Server %q: servers = %#v, want %#v", c.url, got, c.want)
		}
		if bytes.Contains(js, []byte("user")) || bytes.Contains(js, []byte("token")) {
			t.Errorf("Server %q: credentials in the document", c.url)
		}
	}
}

// conversionInfo has hand-written schemas with the 2020-12 keywords Huma's
// struct reflection does not produce, and a recursive schema.
func conversionInfo() asyncapi.Info {
	reg := huma.NewMapRegistry("#/components/schemas/", namer)
	reg.Map()["conv.Owner"] = &huma.Schema{
		Type: "object",
		Properties: map[string]*huma.Schema{
			"name":    {Type: "string"},
			"manager": {Ref: "#/components/schemas/conv.Owner"},
		},
		Extensions: map[string]any{"$id": "https://example.com/owner"},
	}
	reg.Map()["conv.Shape"] = &huma.Schema{
		Type: "object",
		Properties: map[string]*huma.Schema{
			"kind": {Type: "string", Extensions: map[string]any{"const": "shape"}},
			"point": {Type: "array", Extensions: map[string]any{
				"prefixItems": []any{map[string]any{"type": "number"}, map[string]any{"type": "number"}},
				"items":       false,
			}},
			"tags":  {Type: "array", Nullable: true, Items: &huma.Schema{Type: "string"}, Examples: []any{[]any{"a", "b"}}},
			"owner": {Ref: "#/components/schemas/conv.Owner", Description: "Who owns the shape."},
			"blob": {Type: "string", ContentEncoding: "base64", Extensions: map[string]any{
				"contentMediaType": "application/json",
				"contentSchema":    map[string]any{"type": "object"},
			}},
		},
		Required:          []string{"kind"},
		DependentRequired: map[string][]string{"point": {"kind"}},
		Discriminator:     &huma.Discriminator{PropertyName: "kind", Mapping: map[string]string{"shape": "#/components/schemas/conv.Shape"}},
		Extensions: map[string]any{
			"$schema":               "https://json-schema.org/draft/2020-12/schema",
			"$defs":                 map[string]any{"Unit": map[string]any{"type": "string", "enum": []any{"cm", "in"}}},
			"unevaluatedProperties": false,
			"dependentSchemas": map[string]any{
				"owner": map[string]any{"required": []any{"tags"}},
				"point": map[string]any{"properties": map[string]any{"unit": map[string]any{"type": "string"}}},
			},
		},
	}
	return asyncapi.Info{
		Title:   "conversion",
		Version: "1.0.0",
		Publishes: []asyncapi.Topic{{
			Name:    "shapes",
			Subject: "shapes.batch",
			// An inline payload with a $ref inside.
			Payload: &huma.Schema{Type: "array", Items: &huma.Schema{Ref: "#/components/schemas/conv.Shape"}},
		}, {
			Name:    "pings",
			Subject: "shapes.ping",
			// No payload declared.
		}},
		Registry: reg,
	}
}

func TestConversion(t *testing.T) {
	js, _ := build(t, conversionInfo())
	doc := decode(t, js)
	shape := "components schemas conv.Shape "
	for _, c := range []struct {
		path string
		want any
	}{
		{"channels shapes messages shapes payload schema items $ref", "#/components/schemas/conv.Shape"},
		{shape + "$schema", nil},
		{shape + "unevaluatedProperties", nil},
		{shape + "$defs", nil},
		{shape + "definitions Unit type", "string"},
		{shape + "dependentRequired", nil},
		{shape + "dependentSchemas", nil},
		{shape + "dependencies owner required 0", "tags"},
		{shape + "dependencies point allOf 0 required 0", "kind"},
		{shape + "dependencies point allOf 1 properties unit type", "string"},
		{shape + "discriminator", "kind"},
		{shape + "properties kind const", "shape"},
		{shape + "properties point prefixItems", nil},
		{shape + "properties point items 1 type", "number"},
		{shape + "properties point additionalItems", false},
		{shape + "properties tags type 1", "null"},
		{shape + "properties tags examples 0 1", "b"},
		{shape + "properties owner description", "Who owns the shape."},
		{shape + "properties owner allOf 0 $ref", "#/components/schemas/conv.Owner"},
		{shape + "properties owner $ref", nil},
		{shape + "properties blob contentSchema", nil},
		{shape + "properties blob contentMediaType", "application/json"},
		{"components schemas conv.Owner properties manager $ref", "#/components/schemas/conv.Owner"},
		{"components schemas conv.Owner $id", nil},
		{"channels pings messages pings payload", nil},
		{"channels pings messages pings contentType", "application/json"},
	} {
		if got := at(doc, strings.Fields(c.path)...); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.path, got, c.want)
		}
	}
}

func TestComponentNames(t *testing.T) {
	// Names a component key may not hold are made safe; two names that
	// become one are an error.
	reg := huma.NewMapRegistry("#/components/schemas/", namer)
	reg.Map()["Page[orders.Item]"] = &huma.Schema{Type: "object"}
	reg.Map()["Page(orders.Item)"] = &huma.Schema{Type: "object"}
	topic := func(name, schema string) asyncapi.Topic {
		return asyncapi.Topic{Name: name, Subject: name, Payload: &huma.Schema{Ref: "#/components/schemas/" + schema}}
	}
	js, _ := build(t, asyncapi.Info{Title: "t", Version: "1", Registry: reg, Publishes: []asyncapi.Topic{topic("a", "Page[orders.Item]")}})
	if got := at(decode(t, js), "channels", "a", "messages", "a", "payload", "schema", "$ref"); got != "#/components/schemas/Page_orders.Item_" {
		t.Errorf("$ref = %v", got)
	}
	_, err := asyncapi.Build(asyncapi.Info{Title: "t", Version: "1", Registry: reg, Publishes: []asyncapi.Topic{
		topic("a", "Page[orders.Item]"), topic("b", "Page(orders.Item)"),
	}})
	if err == nil || !strings.HasPrefix(err.Error(), "asyncapi: ") || !strings.Contains(err.Error(), "both become") {
		t.Errorf("Build with clashing names: %v", err)
	}
}

// TestValidate checks documents with the official AsyncAPI parser
// (testdata/validator).
func TestValidate(t *testing.T) {
	node := validator(t)
	goldenJSON, goldenYAML := build(t, goldenInfo())
	emptyJSON, emptyYAML := build(t, asyncapi.Info{Title: "idle", Version: "0.1.0"})
	convJSON, _ := build(t, conversionInfo())
	info := goldenInfo()
	info.Subscribes = append(info.Subscribes, asyncapi.Subscription{Topic: info.Publishes[0], Consumer: "audit"})
	info.Server = "tls://a:4222,wss://b:443/ws"
	bothJSON, _ := build(t, info)
	golden, err := asyncapi.Build(goldenInfo())
	if err != nil {
		t.Fatal(err)
	}
	withCalls, err := golden.WithCalls(goldenCalls())
	if err != nil {
		t.Fatal(err)
	}
	callsJSON, _ := withCalls.JSON()
	callsYAML, _ := withCalls.YAML()

	// Two broken documents show that the parser does check the payload
	// schemas and their $refs.
	badType := bytes.Replace(goldenJSON, []byte(`"type": "string"`), []byte(`"type": "strang"`), 1)
	badRef := bytes.ReplaceAll(goldenJSON, []byte(`"#/components/schemas/orders.Item"`), []byte(`"#/components/schemas/orders.Nope"`))

	dir := t.TempDir()
	for _, f := range []struct {
		name    string
		data    []byte
		invalid bool
	}{
		{"golden.json", goldenJSON, false},
		{"golden.yaml", goldenYAML, false},
		{"empty.json", emptyJSON, false},
		{"empty.yaml", emptyYAML, false},
		{"conversion.json", convJSON, false},
		{"both-ways.json", bothJSON, false},
		{"calls.json", callsJSON, false},
		{"calls.yaml", callsYAML, false},
		{"bad-type.json", badType, true},
		{"bad-ref.json", badRef, true},
	} {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(dir, f.name)
			if err := os.WriteFile(file, f.data, 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, node, filepath.Join("testdata", "validator", "validate.mjs"), file).CombinedOutput()
			t.Logf("validate.mjs %s:\n%s", f.name, out)
			var exit *exec.ExitError
			switch {
			case f.invalid && errors.As(err, &exit) && exit.ExitCode() == 1:
			case f.invalid:
				t.Errorf("validate.mjs %s: %v, want exit status 1 (errors found)", f.name, err)
			case err != nil:
				t.Errorf("the AsyncAPI parser rejects %s: %v", f.name, err)
			}
		})
	}
}

// validator returns the node binary, or skips the test when node or the
// validator's packages are missing (fails instead when CI=true).
func validator(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	missing := ""
	switch {
	case err != nil:
		missing = "node is not on PATH (install Node.js 18 or later)"
	default:
		if _, err := os.Stat(filepath.Join("testdata", "validator", "node_modules", "@asyncapi", "parser", "package.json")); err != nil {
			missing = "testdata/validator/node_modules is not installed"
		}
	}
	if missing != "" {
		msg := "AsyncAPI validator unavailable: " + missing + "; install it with: cd internal/asyncapi/testdata/validator && npm ci"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return node
}

func decode(t *testing.T, js []byte) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(js, &doc); err != nil {
		t.Fatalf("document is not JSON: %v", err)
	}
	return doc
}

// at returns the value at a path of object keys and array indexes, or nil.
func at(v any, path ...string) any {
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func equalSorted(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
