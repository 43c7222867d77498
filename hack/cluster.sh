#!/usr/bin/env bash
# Starts or removes the local cluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok run as
# plain processes (kwokctl --runtime binary) from the binaries hack/k8s-binaries.sh builds. kwok simulates nodes, so
# pods are scheduled and reported Running/Ready and Deployments become Available.
#
# kube-apiserver's "cluster" egress (webhook, aggregated API and kubelet connections) goes through an HTTP CONNECT
# proxy on a Unix socket, so that test/fakeistiod (hack/fakeistiod) can answer Istio's injection webhooks: the API
# server calls a webhook service at its ClusterIP, which nothing routes on this machine. While nothing listens on the
# socket, such calls fail as they would without the proxy.
#
#   hack/cluster.sh up             start (idempotent); writes the kubeconfig to $KUBECONFIG_OUT (default bin/kubeconfig)
#   hack/cluster.sh down           delete
#   hack/cluster.sh egress-socket  print the socket (set $EGRESS_SOCKET before `up` to choose it; at most 100 bytes)
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER_NAME=${CLUSTER_NAME:-meshwright}
NODES=${NODES:-3}
KUBECONFIG_OUT=${KUBECONFIG_OUT:-$PWD/bin/kubeconfig}
BIN=$(hack/k8s-binaries.sh | tail -n1)
export PATH="$BIN:$PATH"
# kwokctl keeps its clusters under $KWOK_WORKDIR; keep them beside the binaries, outside the repository.
export KWOK_WORKDIR=${KWOK_WORKDIR:-$(dirname "$BIN")/../kwok}
mkdir -p "$KWOK_WORKDIR"
KWOK_WORKDIR=$(cd "$KWOK_WORKDIR" && pwd -P)
# The egress selector configuration and the socket's path, kept per cluster beside kwokctl's own directory.
EGRESS_DIR="$KWOK_WORKDIR/egress/$CLUSTER_NAME"

write_egress_config() {
  local socket=${EGRESS_SOCKET:-$EGRESS_DIR/fakeistiod.sock}
  if [ "${#socket}" -gt 100 ]; then
    echo "The egress socket path $socket is too long for a Unix socket; set EGRESS_SOCKET" >&2; exit 1
  fi
  mkdir -p "$EGRESS_DIR"
  echo "$socket" > "$EGRESS_DIR/socket"
  cat > "$EGRESS_DIR/egress-selector.yaml" <<EOF
apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: HTTPConnect
    transport:
      uds:
        udsName: $socket
EOF
  cat > "$EGRESS_DIR/kwokctl.yaml" <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
componentsPatches:
- name: kube-apiserver
  extraArgs:
  - key: egress-selector-config-file
    value: $EGRESS_DIR/egress-selector.yaml
EOF
}

case "${1:-up}" in
up)
  if kwokctl get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
    kwokctl start cluster --name "$CLUSTER_NAME" >&2 || true
    if [ ! -f "$EGRESS_DIR/socket" ]; then
      echo "Cluster $CLUSTER_NAME predates the egress proxy (hack/fakeistiod cannot serve it); recreate it with '$0 down'" >&2
    fi
  else
    echo "Creating kwok cluster $CLUSTER_NAME ($NODES simulated nodes)" >&2
    write_egress_config
    kwokctl --config "$EGRESS_DIR/kwokctl.yaml" create cluster --name "$CLUSTER_NAME" --runtime binary \
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
  rm -rf "$EGRESS_DIR"
  rm -f "$KUBECONFIG_OUT"
  ;;
egress-socket)
  if [ ! -f "$EGRESS_DIR/socket" ]; then
    echo "No egress socket for cluster $CLUSTER_NAME: create it with '$0 up'" >&2; exit 1
  fi
  cat "$EGRESS_DIR/socket"
  ;;
*)
  echo "usage: $0 up|down|egress-socket" >&2; exit 2 ;;
esac
