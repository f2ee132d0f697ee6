#!/usr/bin/env bash
# Start real kube-apiservers on loopback for gitfleet's integration tests.
#
#   tests/kube-apiserver/start.sh --members member1,member2,member3 --kubeconfig FILE
#
# Builds the harness (main.go) into a cache directory outside the repository
# when go.mod, go.sum or main.go changed, then execs it with the arguments,
# so that SIGTERM/SIGINT sent to this script's pid reach the harness itself.
# The harness prints "ready" on stdout once every member answers /readyz and
# FILE holds one context per member. The first build compiles kube-apiserver
# and takes minutes; later starts take seconds. See README.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${GITFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gitfleet}/kube-apiserver-harness"
hash="$(cat "$here/go.mod" "$here/go.sum" "$here/main.go" "$here/start.sh" | sha256sum | cut -c1-16)"
dir="$cache_root/$hash"
bin="$dir/harness"

if [[ ! -x "$bin" ]]; then
    command -v go >/dev/null || { echo "start.sh: go is needed to build the harness" >&2; exit 1; }
    mkdir -p "$dir"
    # One build at a time per version; a second caller waits and reuses it.
    exec 9>"$dir/build.lock"
    flock 9
    if [[ ! -x "$bin" ]]; then
        echo "start.sh: building the harness into $bin (the first build compiles kube-apiserver and takes several minutes)" >&2
        start=$SECONDS
        tmp="$(mktemp "$dir/harness.XXXXXX")"
        trap 'rm -f "$tmp"' EXIT
        # Stamp the kubernetes release into /version as the official
        # builds do (otherwise it reads v0.0.0-master).
        k8s="$(sed -n 's|^[[:space:]]*k8s.io/kubernetes \(v[0-9][^[:space:]]*\).*|\1|p' "$here/go.mod" | head -n1)"
        minor="${k8s#v1.}"; minor="${minor%%.*}"
        v=k8s.io/component-base/version
        ldflags="-s -w -X $v.gitVersion=$k8s -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean"
        (
            cd "$here"
            # -mod=readonly: never rewrite go.mod/go.sum; CGO off like the
            # official kube-apiserver builds (static, no C toolchain needed).
            GOFLAGS=-mod=readonly CGO_ENABLED=0 \
                go build -trimpath -ldflags="$ldflags" -o "$tmp" .
        )
        chmod 755 "$tmp"
        mv -f "$tmp" "$bin"
        trap - EXIT
        echo "start.sh: built in $((SECONDS - start))s" >&2
        # Drop binaries of other versions (~100 MB each) unless one is
        # being built right now; a running harness keeps its own file.
        for old in "$cache_root"/*/; do
            [[ "$old" == "$dir/" ]] && continue
            (flock -n 8 && rm -rf "$old") 8>"$old/build.lock" 2>/dev/null || true
        done
    fi
    exec 9>&-
fi

exec "$bin" "$@"
