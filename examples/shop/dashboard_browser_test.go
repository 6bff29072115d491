package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrygo/ferry/dashboard"
	"github.com/ferrygo/ferry/examples/shop/orders/ordersapi"
	"github.com/ferrygo/ferry/examples/shop/worker"
	"github.com/ferrygo/ferry/ferrytest"
)

// browserDir holds the browser test's script and its pinned playwright-core.
const browserDir = "testdata/browser"

// chromium is the browser the test drives: $CHROMIUM, or Debian's.
func chromium() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// needBrowser skips the test when node, Chromium or the script's
// node_modules are missing — and fails it under CI=true.
func needBrowser(t *testing.T) string {
	t.Helper()
	missing := func(what string) {
		msg := what + " (.ci/run installs it: apt-get install chromium nodejs npm; cd examples/shop/testdata/browser && npm ci)"
		if os.Getenv("CI") == "true" {
			t.Fatal("the dashboard's browser test needs " + msg)
		}
		t.Skip("skipped: needs " + msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("Node.js")
	}
	if _, err := os.Stat(chromium()); err != nil {
		missing("Chromium at " + chromium())
	}
	if _, err := os.Stat(filepath.Join(browserDir, "node_modules", "playwright-core")); err != nil {
		missing("playwright-core in " + browserDir + "/node_modules")
	}
	return node
}

// TestDashboardInBrowser starts the shop and its dashboard, and drives the
// dashboard in Chromium: it sees the four services, an order the worker
// refuses shows up in the dead letters, and Replay sends it on — the
// order ends invoiced. With FERRY_UPDATE_SCREENSHOT=1 the screenshot it
// takes becomes docs/dashboard.png.
func TestDashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a browser")
	}
	node := needBrowser(t)
	const refused = "poster"
	s := startShopWith(t, 0, worker.Settings{InvoiceDelay: 20 * time.Millisecond, RefuseSKU: refused})
	base := ferrytest.URL(t, s.gateway)
	ctx := context.Background()
	dash, err := dashboard.Start(ctx, s.h.Client, dashboard.Config{Interval: 500 * time.Millisecond, Logger: ferrytest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := dash.Shutdown(sctx); err != nil {
			t.Errorf("dashboard shutdown: %v", err)
		}
	})

	shot := filepath.Join(t.TempDir(), "dashboard.png")
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(sctx, node, "dashboard.mjs")
	cmd.Dir = browserDir
	cmd.Env = append(os.Environ(), "DASHBOARD_URL="+dash.URL(), "GATEWAY_URL="+base, "API_KEY="+testKey,
		"REFUSED_SKU="+refused, "SCREENSHOT="+shot, "CHROMIUM="+chromium())
	cmd.Stderr = t.Output()
	out, err := cmd.Output()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("the browser script: %v", err)
	}
	_, id, ok := strings.Cut(strings.TrimSpace(string(out)), "ORDER ")
	if !ok {
		t.Fatal("the script named no order")
	}
	// The replayed event reached the worker: the refused order is invoiced.
	if order := waitOrder(t, base, id); order.State != ordersapi.StateInvoiced {
		t.Errorf("the replayed order ended %+v", order)
	}
	if os.Getenv("FERRY_UPDATE_SCREENSHOT") == "1" {
		png, err := os.ReadFile(shot)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "dashboard.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("wrote docs/dashboard.png")
	}
}
