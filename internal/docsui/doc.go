// Package docsui serves an interactive OpenAPI page whose assets are embedded in the binary.
//
// The page is Swagger UI (the npm package swagger-ui-dist, version and
// tarball checksum in assets/VERSION). Its JavaScript and CSS are vendored
// under assets/ by gen.sh and embedded with go:embed, so the page works with
// no internet access and a fresh checkout needs only Go to build.
//
// Mount it with New and Patterns:
//
//	h := docsui.New("/docs", "Items API", "/openapi.json")
//	for _, p := range docsui.Patterns("/docs") {
//		mux.Handle(p, h)
//	}
//
// The page at the prefix has no inline script: assets/init.js reads the
// spec URL from a data-spec-url attribute and starts SwaggerUIBundle, and
// the page is sent with a strict Content-Security-Policy (see New). Asset
// URLs carry a ?v= content hash and are cached for a year when it matches.
//
// The big assets (swagger-ui-bundle.js, swagger-ui.css) are embedded
// gzip-compressed. Clients that accept gzip get those bytes as they are,
// with Content-Encoding: gzip; others get them decompressed (once, then
// kept in memory).
//
// To update Swagger UI, change VERSION in gen.sh, run it, run the tests and
// commit gen.sh and assets/ together.
package docsui
