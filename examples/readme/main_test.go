package main

import (
	"os"
	"strings"
	"testing"
)

// TestREADMESample keeps the README's first code sample identical to this
// program (but for the package comment), so the sample always compiles.
func TestREADMESample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```go\n")
	sample, _, ok2 := strings.Cut(rest, "```\n")
	if !ok || !ok2 {
		t.Fatal("README has no Go sample")
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	_, program, _ := strings.Cut(string(src), "// its test.\n")
	if program != sample {
		t.Errorf("examples/readme/main.go differs from the README's sample:\n%s\n---\n%s", program, sample)
	}
}
