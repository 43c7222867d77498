#!/usr/bin/env bash
# `make undeploy`: removes what `make deploy` installed (kustomize build config/default), except the ServiceMesh CRD
# while any ServiceMesh exists: deleting a CRD deletes every object of its kind, and a ServiceMesh's deletion is the
# operator's to run (it removes the control plane in order). Delete the meshes first for a full uninstall (README).
set -euo pipefail
cd "$(dirname "$0")/.."

build() { if [ -n "${KUSTOMIZE:-}" ]; then "$KUSTOMIZE" build "$1"; else kubectl kustomize "$1"; fi; }
manifests=$(build config/default)

# Every document of the build but the CRD (top-level `kind:` lines are not indented).
without_crd=$(printf '%s\n' "$manifests" | awk 'BEGIN { RS = "\n---\n"; ORS = "\n---\n" } $0 !~ /(^|\n)kind: CustomResourceDefinition(\n|$)/')
printf '%s\n' "$without_crd" | kubectl delete --ignore-not-found --wait=false -f -

if ! kubectl get crd servicemeshes.mesh.meshwright.dev >/dev/null 2>&1; then
  exit 0
fi
meshes=$(kubectl get servicemeshes.mesh.meshwright.dev -o name | wc -l)
if [ "$meshes" -gt 0 ]; then
  echo "Kept the ServiceMesh CRD: $meshes ServiceMesh(es) exist, and deleting the CRD would delete them. For a full uninstall, delete them with the operator running, then run 'make undeploy' again." >&2
  exit 0
fi
kubectl delete --ignore-not-found crd servicemeshes.mesh.meshwright.dev
