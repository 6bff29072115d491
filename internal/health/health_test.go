package health

import (
	"errors"
	"reflect"
	"testing"
)

func TestReady(t *testing.T) {
	var r Registry
	if got := r.Ready(); len(got) != 0 {
		t.Fatalf("an empty registry is not ready: %v", got)
	}
	broken := errors.New("disconnected")
	r.Add("broker", func() error { return broken })
	r.Add("subs", func() error { return nil })
	r.Add("bad", func() error { panic("boom") })
	want := []Problem{{"bad", "check panicked: boom"}, {"broker", "disconnected"}}
	if got := r.Ready(); !reflect.DeepEqual(got, want) {
		t.Errorf("Ready = %v, want %v", got, want)
	}
	r.Remove("bad")
	r.Remove("broker")
	if got := r.Ready(); len(got) != 0 {
		t.Errorf("Ready = %v after removing the failing checks", got)
	}
	r.SetDraining()
	if got := r.Ready(); len(got) != 1 || got[0].Check != "shutdown" {
		t.Errorf("a draining registry: %v", got)
	}
}
