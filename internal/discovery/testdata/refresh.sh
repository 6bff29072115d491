#!/usr/bin/env bash
# Refreshes micro/v1/*.json, the NATS micro response schemas that `nats micro`
# validates answers with, from github.com/nats-io/jsm.go (schemas/micro/v1).
# Usage, from this directory: ./refresh.sh [version]   (default: the one in README.md)
# It downloads the module into a throwaway module cache, so go.mod is untouched.
set -euo pipefail
cd "$(dirname "$0")"
version=${1:-v0.5.1}
cache=$(mktemp -d)
trap 'chmod -R u+w "$cache"; rm -rf "$cache"' EXIT
dir=$(GOMODCACHE=$cache go mod download -json "github.com/nats-io/jsm.go@$version" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
for f in ping_response.json info_response.json stats_response.json; do
	install -m 0644 "$dir/schemas/micro/v1/$f" "micro/v1/$f"
done
echo "micro/v1 schemas from github.com/nats-io/jsm.go@$version; update the version in README.md if it changed"
