package main

import (
	"reflect"
	"testing"
)

func TestPlanIsTheSeeds(t *testing.T) {
	tests := []struct {
		name         string
		seed         int64
		ops, kills   int
		brokerShare  float64
		onlyBroker   bool
		someServices bool
	}{
		{"random", 42, 2000, 12, 1.0 / 3, false, true},
		{"broker only", 7, 300, 3, 1, true, false},
		{"no faults", 1, 10, 0, 0.5, false, false},
		{"few operations", 3, 1, 2, 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPlan(tt.seed, tt.ops, tt.kills, tt.brokerShare)
			if again := newPlan(tt.seed, tt.ops, tt.kills, tt.brokerShare); !reflect.DeepEqual(p, again) {
				t.Fatal("two plans of one seed differ")
			}
			if other := newPlan(tt.seed+1, tt.ops, tt.kills, tt.brokerShare); tt.ops > 100 && reflect.DeepEqual(p, other) {
				t.Error("the plans of two seeds are the same")
			}
			if len(p.Ops) != tt.ops || len(p.Faults) != tt.kills {
				t.Fatalf("plan: %d ops, %d faults; want %d, %d", len(p.Ops), len(p.Faults), tt.ops, tt.kills)
			}
			kinds := map[string]int{}
			for _, op := range p.Ops {
				kinds[op.Kind]++
			}
			if tt.ops >= 1000 && len(kinds) != len(opKinds) {
				t.Errorf("kinds drawn: %v; want all of %v", kinds, opKinds)
			}
			services := 0
			for i, f := range p.Faults {
				if i > 0 && f.At < p.Faults[i-1].At {
					t.Errorf("fault %d at %d before fault %d at %d", i, f.At, i-1, p.Faults[i-1].At)
				}
				if f.At < 0 || f.At > tt.ops || f.Down <= 0 {
					t.Errorf("fault %d: %+v", i, f)
				}
				if f.Target != "broker" {
					services++
				}
			}
			if tt.onlyBroker && services > 0 {
				t.Errorf("%d faults of services; want the broker's only", services)
			}
			if tt.someServices && services == 0 {
				t.Error("no fault of a service")
			}
		})
	}
}

func TestCommandReplaysTheSeed(t *testing.T) {
	o := defaultOptions()
	o.Seed, o.Ops, o.Kills = 9, 100, 2
	if got, want := o.command("go run ./bench/faults"), "go run ./bench/faults -scenario random-faults -seed 9 -ops 100 -kills 2"; got != want {
		t.Errorf("command = %q; want %q", got, want)
	}
	o.Rate = 10
	if got, want := o.command("x"), "x -scenario random-faults -seed 9 -ops 100 -kills 2 -rate 10"; got != want {
		t.Errorf("command = %q; want %q", got, want)
	}
}
