package ferry_test

import (
	"context"
	"flag"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
)

// TestReview10RunSystemNilService: a part whose New returns no service
// and no error is an error of RunSystem, not a nil-pointer panic.
func TestReview10RunSystemNilService(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("RunSystem panicked: %v", r)
			}
		}()
		err = ferry.RunSystem(ctx, flag.NewFlagSet("test", flag.ContinueOnError),
			[]string{"-data-dir", t.TempDir()},
			ferry.Part{Name: "a", New: func() (*ferry.Service, error) { return nil, nil }})
	}()
	if err == nil {
		t.Fatal("RunSystem with a part building no service: no error")
	}
}

// TestReview10RunSystemOwnServiceFlag: a program whose flag set already
// has a -service flag gets an error, not a "flag redefined" panic.
func TestReview10RunSystemOwnServiceFlag(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.String("service", "", "the program's own")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("RunSystem panicked: %v", r)
		}
	}()
	if err := ferry.RunSystem(ctx, fs, []string{"-data-dir", t.TempDir()},
		ferry.Part{Name: "a", New: func() (*ferry.Service, error) { return ferry.New("a", "1.0.0", ferry.WithoutHTTP(), quiet) }}); err == nil {
		t.Log("no error")
	}
}
