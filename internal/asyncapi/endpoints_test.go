package asyncapi_test

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/ferrygo/ferry/internal/asyncapi"
)

func TestEndpoints(t *testing.T) {
	js, _ := build(t, goldenInfo())
	doc := decode(t, js)
	ch := "channels orders.place-order "
	reply := "channels orders.place-order.reply "
	op := "operations serve-place-order "
	for _, c := range []struct {
		path string
		want any
	}{
		{ch + "address", "ferry.orders.place-order"},
		{ch + "messages request payload schema $ref", "#/components/schemas/orders.PlaceOrder"},
		{ch + "messages request headers $ref", "#/components/schemas/ferry-request-headers"},
		{reply + "address", nil},
		{reply + "messages reply payload schema $ref", "#/components/schemas/orders.Placed"},
		{reply + "messages reply headers $ref", "#/components/schemas/ferry-reply-headers"},
		{reply + "messages problem $ref", "#/components/messages/ferry-problem"},
		{"components messages ferry-problem payload schema $ref", "#/components/schemas/orders.Problem"},
		{"components messages ferry-problem contentType", "application/problem+json"},
		{"components schemas ferry-reply-headers required 0", "Ferry-Status"},
		{op + "action", "receive"},
		{op + "channel $ref", "#/channels/orders.place-order"},
		{op + "summary", "Place an order"},
		{op + "messages 0 $ref", "#/channels/orders.place-order/messages/request"},
		{op + "reply channel $ref", "#/channels/orders.place-order.reply"},
		{op + "reply messages 0 $ref", "#/channels/orders.place-order.reply/messages/reply"},
		{op + "reply messages 1 $ref", "#/channels/orders.place-order.reply/messages/problem"},
		{op + "bindings nats queue", "q"},
		{"channels orders.get-order messages request payload", nil},
		{"operations serve-get-order reply channel $ref", "#/channels/orders.get-order.reply"},
		// Topics are as they were.
		{"operations publish-order-placed action", "send"},
		{"channels order-placed address", "orders.placed"},
	} {
		if got := at(doc, strings.Fields(c.path)...); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.path, got, c.want)
		}
	}
	if _, ok := at(doc, "channels", "orders.place-order.reply").(map[string]any)["address"]; !ok {
		t.Error("the reply channel has no address member (want null)")
	}
}

func TestWithCalls(t *testing.T) {
	d, err := asyncapi.Build(goldenInfo())
	if err != nil {
		t.Fatal(err)
	}
	before, _ := d.JSON()
	withCalls, err := d.WithCalls(goldenCalls())
	if err != nil {
		t.Fatal(err)
	}
	after, _ := d.JSON()
	if !bytes.Equal(before, after) {
		t.Fatal("WithCalls changed the document it was called on")
	}
	js, err := withCalls.JSON()
	if err != nil {
		t.Fatal(err)
	}
	doc := decode(t, js)
	op := "operations call-catalog.get-product "
	for _, c := range []struct {
		path string
		want any
	}{
		{op + "action", "send"},
		{op + "x-ferry-observed", true},
		{op + "channel $ref", "#/channels/catalog.get-product"},
		{op + "reply channel $ref", "#/channels/catalog.get-product.reply"},
		{op + "reply messages 1 $ref", "#/channels/catalog.get-product.reply/messages/problem"},
		{"channels catalog.get-product address", "ferry.catalog.get-product"},
		{"channels catalog.get-product messages request payload", nil},
		// A call of its own endpoint shares the endpoint's channel.
		{"operations call-orders.get-order channel $ref", "#/channels/orders.get-order"},
		{"channels orders.get-order messages request headers $ref", "#/components/schemas/ferry-request-headers"},
		{"operations serve-get-order action", "receive"},
		{"operations serve-get-order x-ferry-observed", nil},
	} {
		if got := at(doc, strings.Fields(c.path)...); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.path, got, c.want)
		}
	}
	if !strings.Contains(at(doc, "operations", "call-catalog.get-product", "description").(string), "Observed at run time") {
		t.Error("the observed call's description does not say it was observed")
	}

	// A service with no endpoints of its own gets the components calls
	// need with its first call.
	idle, err := asyncapi.Build(asyncapi.Info{Title: "idle", Version: "1", Problem: goldenInfo().Problem, Registry: goldenInfo().Registry})
	if err != nil {
		t.Fatal(err)
	}
	js, _ = idle.JSON()
	if _, ok := decode(t, js)["components"]; ok {
		t.Error("a document without endpoints or calls has components")
	}
	idleCalls, err := idle.WithCalls(goldenCalls()[:1])
	if err != nil {
		t.Fatal(err)
	}
	js, _ = idleCalls.JSON()
	if got := at(decode(t, js), "components", "messages", "ferry-problem", "contentType"); got != "application/problem+json" {
		t.Errorf("problem message = %v", got)
	}
}

func TestEndpointErrors(t *testing.T) {
	ok := asyncapi.Endpoint{Service: "orders", Name: "place-order", Subject: "ferry.orders.place-order"}
	for name, c := range map[string]struct {
		eps  []asyncapi.Endpoint
		want string
	}{
		"endpoint name with a dot": {[]asyncapi.Endpoint{{Service: "orders", Name: "a.b", Subject: "ferry.orders.a"}}, `endpoint name "a.b"`},
		"no service":               {[]asyncapi.Endpoint{{Name: "a", Subject: "ferry.x.a"}}, "service name is empty"},
		"no subject":               {[]asyncapi.Endpoint{{Service: "orders", Name: "a"}}, "subject is empty"},
		"twice":                    {[]asyncapi.Endpoint{ok, ok}, "declared twice"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := asyncapi.Build(asyncapi.Info{Title: "t", Version: "1", Endpoints: c.eps})
			if err == nil || !strings.HasPrefix(err.Error(), "asyncapi: ") || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Build: %v, want an error containing %q", err, c.want)
			}
		})
	}
	d, err := asyncapi.Build(asyncapi.Info{Title: "t", Version: "1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, calls := range [][]asyncapi.Call{
		{{Service: "a b", Name: "x", Subject: "ferry.a.x"}},
		{{Service: "a", Name: "x", Subject: "ferry.a.x"}, {Service: "a", Name: "x", Subject: "ferry.a.x"}},
	} {
		if _, err := d.WithCalls(calls); err == nil || !strings.HasPrefix(err.Error(), "asyncapi: ") {
			t.Errorf("WithCalls(%v): %v", calls, err)
		}
	}
}
