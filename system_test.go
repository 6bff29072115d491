package ferry_test

import (
	"context"
	"flag"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
)

func TestRunSystemSelectsServices(t *testing.T) {
	var mu sync.Mutex
	var built []string
	part := func(name string) ferry.Part {
		return ferry.Part{Name: name, New: func() (*ferry.Service, error) {
			mu.Lock()
			built = append(built, name)
			mu.Unlock()
			return ferry.New(name, "1.0.0", ferry.WithoutHTTP(), quiet)
		}}
	}
	tests := []struct {
		name    string
		service string
		parts   []ferry.Part
		built   string
		err     string
	}{
		{"all", "all", []ferry.Part{part("a"), part("b")}, "a,b", ""},
		{"one", "b", []ferry.Part{part("a"), part("b")}, "b", ""},
		{"a list, in the parts' order", "c, a", []ferry.Part{part("a"), part("b"), part("c")}, "a,c", ""},
		{"unknown", "x", []ferry.Part{part("a"), part("b")}, "", `-service "x": want all, or a comma-separated list of a, b`},
		{"two parts of one name", "all", []ferry.Part{part("a"), part("a")}, "", `two parts named "a"`},
		{"a part building another service", "all", []ferry.Part{{Name: "a", New: part("z").New}}, "z", `part "a" built service "z"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			built = nil
			mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			args := []string{"-service", tt.service, "-data-dir", t.TempDir(), "-shutdown-grace", "1s"}
			err := ferry.RunSystem(ctx, flag.NewFlagSet("test", flag.ContinueOnError), args, tt.parts...)
			switch {
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("error %v; want one saying %s", err, tt.err)
			case tt.err == "" && err != nil:
				t.Fatalf("error %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if got := strings.Join(built, ","); got != tt.built {
				t.Errorf("built %s; want %s", got, tt.built)
			}
		})
	}
}
