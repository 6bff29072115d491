package main

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/ferrygo/ferry/examples/shop/orders/ordersapi"
	"github.com/ferrygo/ferry/ferrytest"
)

// TestFerryCommandOnTheShop is issue 12's "done when", with real
// processes: with the shop running, the ferry command started in the
// same data directory lists its services with latencies, calls an
// endpoint, replays a dead letter back to the consumer that refused it,
// and follows a job to its end.
func TestFerryCommandOnTheShop(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the shop and the ferry command")
	}
	shopBin, ferryBin := ferrytest.Build(t, "."), ferrytest.Build(t, "../../cmd/ferry")
	dir := t.TempDir()
	lines := startShopCommand(t, shopBin, "-addr", "127.0.0.1:0", "-data-dir", dir, "-refuse-sku", "poster", "-dashboard", "off")
	m := scanFor(t, lines, regexp.MustCompile(`^try:\s+curl -si (\S+) -H 'X-API-Key: (\S+)'`))
	go func() { // the rest of its output
		for lines.Scan() {
		}
	}()
	orders, key := m[1], m[2]
	ferryCmd := func(args ...string) (int, string) {
		t.Helper()
		c := exec.Command(ferryBin, append([]string{"--data-dir", dir}, args...)...)
		var stdout strings.Builder
		c.Stdout, c.Stderr = &stdout, t.Output()
		err := c.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, stdout.String()
	}
	place := func(sku string) ordersapi.Order {
		var o ordersapi.Order
		if status, _, body := do(t, "POST", orders, key, "", `{"sku":"`+sku+`","quantity":1}`, &o); status != http.StatusAccepted {
			t.Fatalf("place an order of %s: %d %s", sku, status, body)
		}
		return o
	}
	base := strings.TrimSuffix(orders, "/orders")
	ended := func(id string) ordersapi.Order {
		var o ordersapi.Order
		ferrytest.Eventually(t, func() bool {
			do(t, "GET", base+"/orders/"+id, key, "", "", &o)
			return o.Terminal()
		}, "order %s ends", id)
		return o
	}

	mug := place("mug")
	if o := ended(mug.OrderID); o.State != ordersapi.StateInvoiced {
		t.Fatalf("the mug order: %+v", o)
	}

	// services: the four, the gateway's place-order with its latency.
	code, stdout := ferryCmd("services", "--json")
	var services []struct {
		Name      string `json:"name"`
		Endpoints []struct {
			Name   string `json:"name"`
			Recent *struct {
				HTTP struct {
					Requests int     `json:"requests"`
					P99      float64 `json:"p99"`
				} `json:"http"`
			} `json:"recent"`
		} `json:"endpoints"`
	}
	if err := json.Unmarshal([]byte(stdout), &services); code != 0 || err != nil {
		t.Fatalf("ferry services: %d %v\n%s", code, err, stdout)
	}
	names, latency := []string{}, false
	for _, s := range services {
		names = append(names, s.Name)
		for _, ep := range s.Endpoints {
			if s.Name == "gateway" && ep.Name == "place-order" && ep.Recent != nil && ep.Recent.HTTP.Requests >= 1 && ep.Recent.HTTP.P99 > 0 {
				latency = true
			}
		}
	}
	if strings.Join(names, ",") != "catalog,gateway,orders,worker" || !latency {
		t.Errorf("ferry services: %v, place-order's latency reported: %v\n%s", names, latency, stdout)
	}
	if code, stdout := ferryCmd("services"); code != 0 || !regexp.MustCompile(`gateway\s+place-order\s+POST /orders\s+\d`).MatchString(stdout) {
		t.Errorf("ferry services (table): %d\n%s", code, stdout)
	}

	// call: the catalog over NATS.
	if code, stdout := ferryCmd("call", "catalog.get-product", "-p", "sku=mug"); code != 0 || !strings.Contains(stdout, `"sold": 1`) {
		t.Errorf("ferry call: %d\n%s", code, stdout)
	}

	// dlq: a poster order's event is refused into the dead letters; a
	// replay moves it back to the worker, and the order ends invoiced.
	poster := place("poster")
	ferrytest.Eventually(t, func() bool {
		_, stdout := ferryCmd("dlq", "list")
		return strings.Contains(stdout, "order-placed") && strings.Contains(stdout, "poster")
	}, "the poster order's event in the dead letters")
	if code, stdout := ferryCmd("dlq", "replay", "--topic", "order-placed"); code != 0 || !strings.Contains(stdout, "replayed 1 dead letter") {
		t.Fatalf("ferry dlq replay: %d\n%s", code, stdout)
	}
	if o := ended(poster.OrderID); o.State != ordersapi.StateInvoiced {
		t.Errorf("the replayed poster order: %+v", o)
	}
	if _, stdout := ferryCmd("dlq", "list"); !strings.Contains(stdout, "no dead letters") {
		t.Errorf("dead letters after the replay:\n%s", stdout)
	}

	// jobs watch: the poster order's invoice job, followed to its end.
	code, stdout = ferryCmd("jobs", "list", "--job", "invoice-order", "--json")
	var listed struct {
		Jobs []struct {
			ID string `json:"id"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal([]byte(stdout), &listed); code != 0 || err != nil || len(listed.Jobs) != 2 {
		t.Fatalf("ferry jobs list: %d %v\n%s", code, err, stdout)
	}
	if code, stdout := ferryCmd("jobs", "watch", listed.Jobs[1].ID); code != 0 || !strings.Contains(stdout, "succeeded") || !strings.Contains(stdout, "INV-") {
		t.Errorf("ferry jobs watch: %d\n%s", code, stdout)
	}
}
