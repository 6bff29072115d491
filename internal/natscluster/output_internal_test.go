package natscluster

import (
	"bytes"
	"strings"
	"testing"
)

func TestOutputPrefixesEachLine(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{name: "whole lines", writes: []string{"a\nb\n"}, want: "[n1] a\n[n1] b\n"},
		{name: "split line", writes: []string{"ab", "c\nd", "e\n"}, want: "[n1] abc\n[n1] de\n"},
		{name: "unfinished last line", writes: []string{"a\nb"}, want: "[n1] a\n[n1] b\n"},
		{name: "nothing", writes: nil, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			o := &output{prefix: "[n1] ", logs: &lockedWriter{w: &buf}}
			for _, w := range tt.writes {
				if n, err := o.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			o.flush()
			if buf.String() != tt.want {
				t.Errorf("logs %q; want %q", buf.String(), tt.want)
			}
		})
	}
}

func TestOutputKeepsTheTail(t *testing.T) {
	o := &output{}
	long := strings.Repeat("x", tailSize) + "\n"
	_, _ = o.Write([]byte(long + "first\n"))
	_, _ = o.Write([]byte("last\n"))
	if got := o.lastLines(); got != "first\nlast" {
		t.Errorf("lastLines() = %q; want the whole lines at the end", got)
	}
}
