// Package docsui serves an interactive OpenAPI page, and optionally a page
// that renders an AsyncAPI document, whose assets are embedded in the binary.
//
// The OpenAPI page is Swagger UI (the npm package swagger-ui-dist); the
// AsyncAPI page, served at prefix+"/asyncapi" with [WithAsyncAPI], is the
// standalone bundle of @asyncapi/react-component (React, the component and
// the AsyncAPI parser; about 640 KB gzipped), started by
// assets/asyncapi-init.js. Versions and tarball checksums are in
// assets/VERSION. Their JavaScript and CSS are vendored
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
// The AsyncAPI page's policy also allows 'unsafe-eval': the AsyncAPI
// parser compiles its schema validators with new Function (checked with
// headless Chromium: without it the page stays empty).
//
// The big assets (swagger-ui-bundle.js, swagger-ui.css, and the AsyncAPI
// page's asyncapi-standalone.js and asyncapi.css) are embedded
// gzip-compressed. Clients that accept gzip get those bytes as they are,
// with Content-Encoding: gzip; others get them decompressed (once, then
// kept in memory).
//
// To update Swagger UI or the AsyncAPI component, change VERSION or
// ASYNCAPI_VERSION in gen.sh, run it, run the tests and commit gen.sh and
// assets/ together.
package docsui
