#!/usr/bin/env bash
# kubectl built from the Go modules of this harness (same Kubernetes release),
# for the apply benchmark. Builds into the cache on first use, then execs it:
#
#   tests/kube-apiserver/kubectl.sh --kubeconfig FILE --context member1 get ns
#   tests/kube-apiserver/kubectl.sh --print-path   # build if needed, print the binary's path
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${GITFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gitfleet}/kubectl"
hash="$(cat "$here/go.mod" "$here/go.sum" "$here/kubectl/main.go" | sha256sum | cut -c1-16)"
dir="$cache_root/$hash"
bin="$dir/kubectl"

if [[ ! -x "$bin" ]]; then
    command -v go >/dev/null || { echo "kubectl.sh: go is needed to build kubectl" >&2; exit 1; }
    mkdir -p "$dir"
    exec 9>"$dir/build.lock"
    flock 9
    if [[ ! -x "$bin" ]]; then
        echo "kubectl.sh: building kubectl into $bin" >&2
        tmp="$(mktemp "$dir/kubectl.XXXXXX")"
        trap 'rm -f "$tmp"' EXIT
        (cd "$here" && GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$tmp" ./kubectl)
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

if [[ "${1:-}" == "--print-path" ]]; then
    echo "$bin"
    exit 0
fi
exec "$bin" "$@"
