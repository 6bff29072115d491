package ferry_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Found by review: the docs name options that do not exist: docs/events.md tells
// readers to use `WithDeliverNew` for a subscription that starts at new
// events; the option is SubscribeDeliverNew.
func TestDocsNameExistingOptions(t *testing.T) {
	fset := token.NewFileSet()
	exported := map[string]bool{}
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for name := range file.Scope.Objects {
			if ast.IsExported(name) {
				exported[name] = true
			}
		}
	}
	ident := regexp.MustCompile("`(?:ferry\\.)?((?:With|Subscribe|Default)[A-Za-z]+)")
	docs, _ := filepath.Glob("docs/*.md")
	for _, doc := range append(docs, "README.md") {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ident.FindAllStringSubmatch(string(text), -1) {
			if !exported[m[1]] {
				t.Errorf("%s names %s, which package ferry does not declare", doc, m[1])
			}
		}
	}
}
