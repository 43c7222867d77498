#!/usr/bin/env bash
# The test command behind `make test`: builds (once per machine) the Kubernetes binaries, then runs the unit and
# envtest suites against a real kube-apiserver + etcd, and the e2e suite against a real kwok cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=$(hack/k8s-binaries.sh | tail -n1)
export KUBEBUILDER_ASSETS="$BIN"
export PATH="$BIN:$PATH"
export CONTROLLER_GEN=${CONTROLLER_GEN:-$PWD/bin/controller-gen-v0.23.0}

echo "== unit and envtest suites (kube-apiserver and etcd from $BIN)"
go test -count=1 -race -timeout 30m ./...

hack/e2e.sh
