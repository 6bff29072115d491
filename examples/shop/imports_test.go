package main

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const shopModule = "github.com/ferrygo/ferry/examples/shop/"

// TestServicesImportOnlyContracts: each service's package imports, of the
// shop, only contract packages (its own and the others'), and a contract
// package only other contracts — so each service builds, deploys and
// changes on its own.
func TestServicesImportOnlyContracts(t *testing.T) {
	services := []string{"gateway", "catalog", "orders", "worker"}
	for _, svc := range services {
		for _, dir := range []string{svc, filepath.Join(svc, svc+"api")} {
			t.Run(dir, func(t *testing.T) {
				imports := packageImports(t, dir)
				if len(imports) == 0 {
					t.Fatalf("%s: no Go files", dir)
				}
				for _, path := range imports {
					rest, ok := strings.CutPrefix(path, shopModule)
					if !ok {
						continue
					}
					parts := strings.Split(rest, "/")
					if len(parts) != 2 || parts[1] != parts[0]+"api" {
						t.Errorf("%s imports %s: a service may import only the shop's contract packages (<service>/<service>api)", dir, path)
					}
				}
			})
		}
	}
}

// packageImports returns the imports of the non-test Go files in dir.
func packageImports(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var imports []string
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			imports = append(imports, path)
		}
	}
	return imports
}
