#!/usr/bin/env bash
# gen.sh - vendor the Swagger UI and AsyncAPI assets that package docsui embeds.
#
# What it does, for Swagger UI (the OpenAPI page) and then for the AsyncAPI
# React component (the AsyncAPI page):
#   1. Downloads the pinned npm package swagger-ui-dist@$VERSION with
#      `npm pack` (no install, no dependencies, no install scripts) into a
#      temporary directory and checks the tarball against the integrity hash
#      that the registry publishes.
#   2. Copies only the files the docs page needs into ./assets/:
#        swagger-ui-bundle.js  -> assets/swagger-ui-bundle.js.gz
#        swagger-ui.css        -> assets/swagger-ui.css.gz
#      with every `//# sourceMappingURL=...` and `/*# sourceMappingURL=... */`
#      comment removed (the .map files are not shipped, so browsers must
#      never ask for them), precompressed with `gzip -9 -n` (no name, no
#      timestamp, so the output is byte-for-byte reproducible), plus the
#      license files the Apache-2.0 license asks us to redistribute:
#        LICENSE, NOTICE, swagger-ui-bundle.js.LICENSE.txt (third-party
#        licenses of the code bundled into swagger-ui-bundle.js).
#   3. For the AsyncAPI page, from @asyncapi/react-component@$ASYNCAPI_VERSION
#      (its standalone bundle: React, the component and the AsyncAPI parser
#      in one script that defines window.AsyncApiStandalone):
#        browser/standalone/index.js -> assets/asyncapi-standalone.js.gz
#        styles/default.min.css      -> assets/asyncapi.css.gz
#      and its licenses: LICENSE -> assets/asyncapi-LICENSE,
#        browser/standalone/index.js.LICENSE.txt
#          -> assets/asyncapi-standalone.js.LICENSE.txt
#   4. Writes assets/VERSION: each package's name, version and the sha256 of
#      its tarball.
#
# It only touches the files listed above, so the hand-written assets/init.js
# and assets/asyncapi-init.js are left alone. Running it again gives the same files (it is idempotent).
#
# Usage:  internal/docsui/gen.sh          (from any directory)
# Needs:  bash, npm and node (registry access), tar, gzip, sed, sha256sum.
#
# Bumping Swagger UI or the AsyncAPI component:
#   1. Change VERSION or ASYNCAPI_VERSION below (see `npm view swagger-ui-dist
#      versions`, `npm view @asyncapi/react-component versions`).
#   2. Run this script, then `go test ./internal/docsui/`.
#   3. Look at the page in a browser (or a headless screenshot) and commit
#      gen.sh together with everything under assets/.
set -euo pipefail

PACKAGE=swagger-ui-dist
VERSION=5.35.0
ASYNCAPI_PACKAGE=@asyncapi/react-component
ASYNCAPI_VERSION=3.2.1

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/assets"
mkdir -p "$out"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# fetch NAME VERSION DIR: unpacks the package's tarball into DIR/package
# after checking it against the registry's published integrity (sha512),
# and prints the tarball's sha256.
fetch() {
	local name="$1" version="$2" dir="$3"
	mkdir -p "$dir"
	echo "gen.sh: fetching $name@$version" >&2
	local tgz
	tgz="$(cd "$dir" && npm pack --silent --ignore-scripts "$name@$version" | tail -n 1)"
	tgz="$dir/$tgz"
	[[ -f "$tgz" ]] || { echo "gen.sh: npm pack did not produce a tarball for $name@$version" >&2; exit 1; }
	local want got
	want="$(npm view "$name@$version" dist.integrity)"
	got="$(node -e 'const c=require("crypto"),fs=require("fs");
process.stdout.write("sha512-"+c.createHash("sha512").update(fs.readFileSync(process.argv[1])).digest("base64"))' "$tgz")"
	if [[ "$want" != "$got" ]]; then
		echo "gen.sh: integrity mismatch for $tgz: registry says $want, got $got" >&2
		exit 1
	fi
	tar -xzf "$tgz" -C "$dir"
	sha256sum "$tgz" | cut -d' ' -f1
}

# Remove source map annotations, whether on their own line or at the end of a
# code line (the bundle is a single line), without touching anything else.
strip_sourcemaps() {
	sed -E \
		-e 's#/\*[#@][[:space:]]*sourceMappingURL=[^*]*\*/##g' \
		-e 's#//[#@][[:space:]]*sourceMappingURL=[^[:space:]]*[[:space:]]*$##' \
		"$1"
}

# compress SRC NAME: SRC without source map annotations, as assets/NAME.gz.
compress() {
	local src="$1" name="$2"
	[[ -s "$src" ]] || { echo "gen.sh: $src missing from the package" >&2; exit 1; }
	strip_sourcemaps "$src" >"$tmp/$name"
	if grep -q 'sourceMappingURL' "$tmp/$name"; then
		echo "gen.sh: $name still mentions sourceMappingURL after stripping" >&2
		exit 1
	fi
	gzip -9 -n -c "$tmp/$name" >"$out/$name.gz"
}

# copy SRC NAME: a license file, as assets/NAME.
copy() {
	[[ -s "$1" ]] || { echo "gen.sh: $1 missing from the package" >&2; exit 1; }
	cp "$1" "$out/$2"
}

sha256="$(fetch "$PACKAGE" "$VERSION" "$tmp/swagger")"
pkg="$tmp/swagger/package"
for f in swagger-ui-bundle.js swagger-ui.css; do
	compress "$pkg/$f" "$f"
done
for f in LICENSE NOTICE swagger-ui-bundle.js.LICENSE.txt; do
	copy "$pkg/$f" "$f"
done

asyncapi_sha256="$(fetch "$ASYNCAPI_PACKAGE" "$ASYNCAPI_VERSION" "$tmp/asyncapi")"
pkg="$tmp/asyncapi/package"
compress "$pkg/browser/standalone/index.js" asyncapi-standalone.js
compress "$pkg/styles/default.min.css" asyncapi.css
copy "$pkg/LICENSE" asyncapi-LICENSE
copy "$pkg/browser/standalone/index.js.LICENSE.txt" asyncapi-standalone.js.LICENSE.txt

cat >"$out/VERSION" <<VERSION_EOF
package: $PACKAGE
version: $VERSION
tarball: $PACKAGE-$VERSION.tgz
sha256: $sha256

package: $ASYNCAPI_PACKAGE
version: $ASYNCAPI_VERSION
tarball: asyncapi-react-component-$ASYNCAPI_VERSION.tgz
sha256: $asyncapi_sha256
VERSION_EOF

generated=(swagger-ui-bundle.js.gz swagger-ui.css.gz LICENSE NOTICE swagger-ui-bundle.js.LICENSE.txt
	asyncapi-standalone.js.gz asyncapi.css.gz asyncapi-LICENSE asyncapi-standalone.js.LICENSE.txt VERSION)
(cd "$out" && chmod 0644 "${generated[@]}")
echo "gen.sh: wrote ${generated[*]} to $out" >&2
