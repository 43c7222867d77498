#!/usr/bin/env bash
# Starts or removes the local cluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok run as
# plain processes (kwokctl --runtime binary) from the binaries hack/k8s-binaries.sh builds. kwok simulates nodes, so
# pods are scheduled and reported Running/Ready and Deployments become Available.
#
#   hack/cluster.sh up     start (idempotent); writes the kubeconfig to $KUBECONFIG_OUT (default bin/kubeconfig)
#   hack/cluster.sh down   delete
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER_NAME=${CLUSTER_NAME:-meshwright}
NODES=${NODES:-3}
KUBECONFIG_OUT=${KUBECONFIG_OUT:-$PWD/bin/kubeconfig}
BIN=$(hack/k8s-binaries.sh | tail -n1)
export PATH="$BIN:$PATH"
# kwokctl keeps its clusters under $KWOK_WORKDIR; keep them beside the binaries, outside the repository.
export KWOK_WORKDIR=${KWOK_WORKDIR:-$(dirname "$BIN")/../kwok}

case "${1:-up}" in
up)
  if kwokctl get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
    kwokctl start cluster --name "$CLUSTER_NAME" >&2 || true
  else
    echo "Creating kwok cluster $CLUSTER_NAME ($NODES simulated nodes)" >&2
    kwokctl create cluster --name "$CLUSTER_NAME" --runtime binary \
      --etcd-binary "$BIN/etcd" \
      --kube-apiserver-binary "$BIN/kube-apiserver" \
      --kube-controller-manager-binary "$BIN/kube-controller-manager" \
      --kube-scheduler-binary "$BIN/kube-scheduler" \
      --kwok-controller-binary "$BIN/kwok" \
      --wait 2m >&2
  fi
  kwokctl scale node --name "$CLUSTER_NAME" --replicas "$NODES" >&2
  mkdir -p "$(dirname "$KUBECONFIG_OUT")"
  kwokctl get kubeconfig --name "$CLUSTER_NAME" > "$KUBECONFIG_OUT"
  echo "$KUBECONFIG_OUT"
  ;;
down)
  kwokctl delete cluster --name "$CLUSTER_NAME" >&2 || true
  rm -f "$KUBECONFIG_OUT"
  ;;
*)
  echo "usage: $0 up|down" >&2; exit 2 ;;
esac
