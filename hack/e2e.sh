#!/usr/bin/env bash
# Runs the e2e suite (test/e2e) on a fresh kwok cluster with the operator as users install it: `make docker-build`
# first, then the suite extracts /manager from bin/image and runs it under its ServiceAccount. Extra arguments go to
# `go test` (e.g. -run TestChaos). Used by `make test` (hack/test.sh), `make test-chaos` and `make bench`.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=$(hack/k8s-binaries.sh | tail -n1)
export PATH="$BIN:$PATH"

echo "== image (make docker-build: linux/amd64 + linux/arm64 OCI layout in bin/image)"
make --no-print-directory docker-build
export MESHWRIGHT_IMAGE_LAYOUT=$PWD/bin/image

echo "== e2e suite on a kwok cluster (the image's manager, under its own ServiceAccount)"
go test -count=1 -tags e2e -timeout "${E2E_TIMEOUT:-40m}" -v "$@" ./test/e2e/... | grep -v "^{"
