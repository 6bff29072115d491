package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestSoak runs the soak briefly: 4 s by default, which checks that the
// load, the sampling, the store check and the plot work; 45 s with
// FERRY_SOAK=short (what CI runs), or the duration FERRY_SOAK gives
// ("2m"), which also judge the goroutines and the RSS flat after the
// warm-up. Speed is reported, never asserted.
func TestSoak(t *testing.T) {
	o := DefaultOptions()
	o.Duration, o.Every = 4*time.Second, time.Second
	judge := false
	switch v := os.Getenv("FERRY_SOAK"); v {
	case "":
	case "short":
		o.Duration, o.Every, judge = 45*time.Second, time.Second, true
	default:
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("FERRY_SOAK=%q: want short or a duration", v)
		}
		o.Duration, o.Every, judge = d, 0, true
	}
	o.OrderRate, o.HTTPRate, o.NATSRate = 5, 20, 20
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s\n%s", res.Table(), res.Verdict)
	if e := res.Errors(); e > 0 {
		t.Errorf("%d of the soak's requests failed: %s", e, strings.Join(res.Failures, "; "))
	}
	for _, v := range res.Violations {
		t.Errorf("store check: %s", v)
	}
	for k := range kinds {
		if res.Total[k] == 0 {
			t.Errorf("no %s in %s", kindNames[k], o.Duration)
		}
	}
	if judge && !res.Flat {
		t.Errorf("not flat: %s", res.Verdict)
	}
	if svg := res.SVG(); !strings.HasPrefix(svg, "<svg") || !strings.Contains(svg, "<polyline") {
		t.Errorf("the plot has no lines: %.200s", svg)
	}
	if rec := res.Record("go test ./bench/soak"); rec.Lost != 0 || rec.Acknowledged == 0 || rec.Found != rec.Acknowledged {
		t.Errorf("record: %+v", rec)
	}
}
