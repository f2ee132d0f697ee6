#!/usr/bin/env bash
# html-validate and axe-core for tests/dashboard.rs, from the npm registry at
# the versions of tests/tools/web-checks/package-lock.json, installed once into
# a cache folder outside the repository. Prints the node_modules folder.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/web-checks"
cache_root="${GITFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gitfleet}/web-checks"
hash="$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -c1-16)"
dir="$cache_root/$hash"
if [[ ! -f "$dir/done" ]]; then
    command -v npm >/dev/null || { echo "web-checks.sh: npm is needed" >&2; exit 1; }
    mkdir -p "$dir"
    exec 9>"$dir/install.lock"
    flock 9
    if [[ ! -f "$dir/done" ]]; then
        cp "$here/package.json" "$here/package-lock.json" "$dir/"
        (cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts >&2)
        touch "$dir/done"
    fi
fi
echo "$dir/node_modules"
