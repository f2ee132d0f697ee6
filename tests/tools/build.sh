#!/usr/bin/env bash
# Builds a Go tool the tests use from the Go modules pinned in tests/tools/NAME
# (go.mod's `tool` line and go.sum), once, into the cache outside the
# repository, and prints the binary's path:
#
#   tests/tools/build.sh helm        # Helm, for the chart tests
#   tests/tools/build.sh promtool    # promtool, for the metrics test
#   tests/tools/build.sh githttp     # an HTTPS Git server, for the Git host tests
#
# A second build of the same go.mod/go.sum reuses the cached binary.
set -euo pipefail

name="${1:?usage: build.sh NAME}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
module="$here/$name"
[[ -f "$module/go.mod" ]] || { echo "build.sh: no tool $name in $here" >&2; exit 1; }
cache_root="${GITFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gitfleet}/$name"
shopt -s nullglob
hash="$(cat "$module/go.mod" "$module/go.sum" "$module"/*.go | sha256sum | cut -c1-16)"
dir="$cache_root/$hash"
bin="$dir/$name"

if [[ ! -x "$bin" ]]; then
    command -v go >/dev/null || { echo "build.sh: go is needed to build $name" >&2; exit 1; }
    mkdir -p "$dir"
    exec 9>"$dir/build.lock"
    flock 9
    if [[ ! -x "$bin" ]]; then
        # The module's `tool` (a program of another module), or its own main package.
        package="$(sed -n 's/^tool[[:space:]]\+//p' "$module/go.mod" | head -n1)"
        package="${package:-.}"
        echo "build.sh: building $package into $bin" >&2
        tmp="$(mktemp "$dir/$name.XXXXXX")"
        trap 'rm -f "$tmp"' EXIT
        (cd "$module" && GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$tmp" "$package") >&2
        chmod 755 "$tmp"
        mv -f "$tmp" "$bin"
        trap - EXIT
        for old in "$cache_root"/*/; do
            [[ "$old" == "$dir/" ]] && continue
            (flock -n 8 && rm -rf "$old") 8>"$old/build.lock" 2>/dev/null || true
        done
    fi
    exec 9>&-
fi
echo "$bin"
