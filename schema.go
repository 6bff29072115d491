package ferry

import (
	"path"
	"reflect"
	"regexp"
	"strings"
	"sync"

	"github.com/danielgtaylor/huma/v2"
)

var majorVersionElem = regexp.MustCompile(`^v[0-9]+$`)

// schemaNamer returns a Huma schema namer that qualifies named types with
// their package, so catalog.Item and orders.Item can live in one document
// (Huma's default drops the package and panics on the clash). A type is
// named after the last element of its import path ("catalog.Item"; a major
// version element joins its parent: "catalogv2.Item"); if two packages
// share that element, the later one gets its whole import path
// ("example.com.shop.catalog.Item"). Unnamed and built-in types keep Huma's
// names.
func schemaNamer() func(reflect.Type, string) string {
	var mu sync.Mutex
	byName := map[string]reflect.Type{}
	return func(t reflect.Type, hint string) string {
		base := huma.DefaultSchemaNamer(t, hint)
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Name() == "" || t.PkgPath() == "" {
			return base
		}
		name := packageLabel(t.PkgPath()) + "." + base
		mu.Lock()
		defer mu.Unlock()
		if prev, ok := byName[name]; ok && prev != t {
			name = strings.ReplaceAll(t.PkgPath(), "/", ".") + "." + base
		}
		byName[name] = t
		return name
	}
}

func packageLabel(pkgPath string) string {
	last := path.Base(pkgPath)
	if majorVersionElem.MatchString(last) {
		if parent := path.Base(path.Dir(pkgPath)); parent != "." && parent != "/" {
			return parent + last
		}
	}
	return last
}
