package ferry_test

import (
	"context"
	"errors"
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

// TestRunSystemStarted: each selected part's Started runs once the system
// serves, with its service; an error from one stops the system and is
// returned; one that returns nil lets it run until ctx ends.
func TestRunSystemStarted(t *testing.T) {
	newSvc := func(name string) func() (*ferry.Service, error) {
		return func() (*ferry.Service, error) { return ferry.New(name, "1.0.0", ferry.WithoutHTTP(), quiet) }
	}
	args := func(t *testing.T) []string {
		return []string{"-data-dir", t.TempDir(), "-shutdown-grace", "1s", "-nats-embed"}
	}
	t.Run("an error stops the system", func(t *testing.T) {
		boom := errors.New("seed failed")
		var saw string
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := ferry.RunSystem(ctx, nil, args(t),
			ferry.Part{Name: "a", New: newSvc("a"), Started: func(ctx context.Context, svc *ferry.Service) error {
				saw = svc.Name()
				if svc.Client() == nil {
					return errors.New("no client: the service has not started")
				}
				return boom
			}},
			ferry.Part{Name: "b", New: newSvc("b")})
		if !errors.Is(err, boom) || saw != "a" || ctx.Err() != nil {
			t.Fatalf("RunSystem = %v (saw %q, ctx %v); want the hook's error, at once", err, saw, ctx.Err())
		}
	})
	t.Run("a hook that returns lets the system run", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		ran := make(chan struct{}, 2)
		hook := func(ctx context.Context, svc *ferry.Service) error { ran <- struct{}{}; return nil }
		err := ferry.RunSystem(ctx, nil, append(args(t), "-service", "b"),
			ferry.Part{Name: "a", New: newSvc("a"), Started: hook},
			ferry.Part{Name: "b", New: newSvc("b"), Started: hook})
		if err != nil || len(ran) != 1 {
			t.Fatalf("RunSystem = %v after %d hooks; want nil after the selected part's one", err, len(ran))
		}
	})
}
