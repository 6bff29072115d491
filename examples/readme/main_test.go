package main

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/readme/itemsapi"
	"github.com/ferrygo/ferry/ferrytest"
)

// TestREADMESamples keeps every Go code block of the README identical to a
// Go file of this directory (from its package clause on), so each block
// compiles; and it finds endpoint declarations written outside such
// blocks, which nothing would compile.
func TestREADMESamples(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{} // program text → file
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if i := strings.Index(string(src), "\npackage "); i >= 0 {
			files[string(src[i+1:])] = path
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	blocks, prose := goBlocks(string(readme))
	if len(blocks) == 0 {
		t.Fatal("README has no Go code block")
	}
	for i, b := range blocks {
		if _, ok := files[b]; !ok {
			t.Errorf("README's Go block %d matches no file of examples/readme:\n%s", i+1, b)
		}
	}
	if strings.Contains(prose, "ferry.Endpoint[") {
		t.Error("README declares an endpoint outside a Go code block; move it into one, kept identical to a file here")
	}
}

// goBlocks returns the Go code blocks of a Markdown text, and the text
// outside them.
func goBlocks(md string) (blocks []string, prose string) {
	var rest strings.Builder
	for {
		before, after, ok := strings.Cut(md, "```go\n")
		rest.WriteString(before)
		if !ok {
			return blocks, rest.String()
		}
		block, next, ok := strings.Cut(after, "```\n")
		if !ok {
			return blocks, rest.String()
		}
		blocks = append(blocks, block)
		md = next
	}
}

// TestREADMEContract serves the README's contract and calls it through
// the same value, as another service would.
func TestREADMEContract(t *testing.T) {
	svc := ferry.MustNew("items", "1.0.0", ferry.WithoutHTTP(), ferry.WithNATS(), ferry.WithLogger(ferrytest.Logger(t)))
	ferry.Handle(svc, itemsapi.GetItem, func(ctx context.Context, in *itemsapi.GetItemInput) (*itemsapi.GetItemOutput, error) {
		out := &itemsapi.GetItemOutput{}
		out.Body.ItemID = in.ItemID
		return out, nil
	})
	h := ferrytest.Start(t, svc)
	out, err := itemsapi.GetItem.Call(context.Background(), h.Client, &itemsapi.GetItemInput{ItemID: 42})
	if err != nil || out.Body.ItemID != 42 {
		t.Fatalf("Call = %+v, %v", out, err)
	}
}
