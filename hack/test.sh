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
go test -count=1 ./...

echo "== image (make docker-build: linux/amd64 + linux/arm64 OCI layout in bin/image)"
make --no-print-directory docker-build
export MESHWRIGHT_IMAGE_LAYOUT=$PWD/bin/image

echo "== e2e suite on a kwok cluster (the image's manager, under its own ServiceAccount)"
go test -count=1 -tags e2e -timeout 30m -v ./test/e2e/... | grep -v "^{"
