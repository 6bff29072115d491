#!/usr/bin/env bash
# gen.sh - vendor the Swagger UI assets that package docsui embeds.
#
# What it does:
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
#   3. Writes assets/VERSION: package name, version and the sha256 of the
#      tarball.
#
# It only touches the files listed above, so the hand-written assets/init.js
# is left alone. Running it again gives the same files (it is idempotent).
#
# Usage:  internal/docsui/gen.sh          (from any directory)
# Needs:  bash, npm and node (registry access), tar, gzip, sed, sha256sum.
#
# Bumping Swagger UI:
#   1. Change VERSION below (see `npm view swagger-ui-dist versions`).
#   2. Run this script, then `go test ./internal/docsui/`.
#   3. Look at the page in a browser (or a headless screenshot) and commit
#      gen.sh together with everything under assets/.
set -euo pipefail

PACKAGE=swagger-ui-dist
VERSION=5.35.0

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/assets"
mkdir -p "$out"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "gen.sh: fetching $PACKAGE@$VERSION" >&2
(cd "$tmp" && npm pack --silent --ignore-scripts "$PACKAGE@$VERSION" >/dev/null)
tgz="$tmp/$PACKAGE-$VERSION.tgz"
[[ -f "$tgz" ]] || { echo "gen.sh: npm pack did not produce $tgz" >&2; exit 1; }

# Check the tarball against the registry's published integrity (sha512).
want="$(npm view "$PACKAGE@$VERSION" dist.integrity)"
got="$(node -e 'const c=require("crypto"),fs=require("fs");
process.stdout.write("sha512-"+c.createHash("sha512").update(fs.readFileSync(process.argv[1])).digest("base64"))' "$tgz")"
if [[ "$want" != "$got" ]]; then
	echo "gen.sh: integrity mismatch for $tgz: registry says $want, got $got" >&2
	exit 1
fi
sha256="$(sha256sum "$tgz" | cut -d' ' -f1)"

mkdir "$tmp/x"
tar -xzf "$tgz" -C "$tmp/x"
pkg="$tmp/x/package"

# Remove source map annotations, whether on their own line or at the end of a
# code line (the bundle is a single line), without touching anything else.
strip_sourcemaps() {
	sed -E \
		-e 's#/\*[#@][[:space:]]*sourceMappingURL=[^*]*\*/##g' \
		-e 's#//[#@][[:space:]]*sourceMappingURL=[^[:space:]]*[[:space:]]*$##' \
		"$1"
}

for f in swagger-ui-bundle.js swagger-ui.css; do
	[[ -s "$pkg/$f" ]] || { echo "gen.sh: $f missing from the package" >&2; exit 1; }
	strip_sourcemaps "$pkg/$f" >"$tmp/$f"
	if grep -q 'sourceMappingURL' "$tmp/$f"; then
		echo "gen.sh: $f still mentions sourceMappingURL after stripping" >&2
		exit 1
	fi
	gzip -9 -n -c "$tmp/$f" >"$out/$f.gz"
done

for f in LICENSE NOTICE swagger-ui-bundle.js.LICENSE.txt; do
	[[ -s "$pkg/$f" ]] || { echo "gen.sh: $f missing from the package" >&2; exit 1; }
	cp "$pkg/$f" "$out/$f"
done

cat >"$out/VERSION" <<VERSION_EOF
package: $PACKAGE
version: $VERSION
tarball: $PACKAGE-$VERSION.tgz
sha256: $sha256
VERSION_EOF

generated=(swagger-ui-bundle.js.gz swagger-ui.css.gz LICENSE NOTICE swagger-ui-bundle.js.LICENSE.txt VERSION)
(cd "$out" && chmod 0644 "${generated[@]}")
echo "gen.sh: wrote ${generated[*]} to $out" >&2
