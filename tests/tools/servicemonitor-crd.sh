#!/usr/bin/env bash
# Prints the path of the Prometheus Operator's ServiceMonitor CRD, taken from
# the Go module of the release below (downloaded once into the Go module cache
# and checked against the Go checksum database), for the chart tests.
set -euo pipefail
version=v0.85.0
dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && GOFLAGS=-mod=mod go mod download -json \
    "github.com/prometheus-operator/prometheus-operator@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
crd="$dir/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml"
[[ -f "$crd" ]] || { echo "servicemonitor-crd.sh: no $crd" >&2; exit 1; }
echo "$crd"
