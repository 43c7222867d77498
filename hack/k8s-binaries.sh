#!/usr/bin/env bash
# Builds the Kubernetes binaries the tests and the local cluster run (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, etcd, kwok, kwokctl) from source through the Go module proxy, into a cache directory
# outside the repository keyed by version, so a fresh clone on the same machine reuses them.
#
# Prints the directory on the last line of stdout; progress goes to stderr.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-1.37.0}
ETCD_VERSION=${ETCD_VERSION:-3.6.8}
KWOK_VERSION=${KWOK_VERSION:-0.8.0}
CACHE_ROOT=${MESHWRIGHT_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/meshwright}
BIN_DIR="$CACHE_ROOT/bin/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION"
STAGING_VERSION="v0.${K8S_VERSION#1.}"

start=$(date +%s)
log() { printf '[k8s-binaries %4ss] %s\n' "$(( $(date +%s) - start ))" "$*" >&2; }

have() { for b in "$@"; do [ -x "$BIN_DIR/$b" ] || return 1; done; }

check_proxy() {
  if ! go mod download -json "$1" >/dev/null 2>"$work/proxy.err"; then
    log "ERROR: cannot download $1 from the Go module proxy ($(go env GOPROXY))."
    sed 's/^/    /' "$work/proxy.err" >&2
    log "The binaries are built from source; the module proxy must be reachable (or the cache $BIN_DIR filled)."
    exit 1
  fi
}

mkdir -p "$BIN_DIR"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GOFLAGS=-mod=mod GOTOOLCHAIN=local

if have kube-apiserver kube-controller-manager kube-scheduler kubectl; then
  log "Kubernetes v$K8S_VERSION binaries already in $BIN_DIR"
else
  log "Building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl v$K8S_VERSION from source (about 12 minutes on 2 cores, once per machine)"
  check_proxy "k8s.io/kubernetes@v$K8S_VERSION"
  mod="$work/k8s"; mkdir -p "$mod"
  gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  {
    echo "module meshwright.local/k8s-binaries"
    echo "go $(go env GOVERSION | sed 's/^go//; s/\([0-9]*\.[0-9]*\).*/\1/')"
    echo "require k8s.io/kubernetes v$K8S_VERSION"
    # k8s.io/kubernetes points every staging module at ./staging; point them at the published modules instead.
    awk -v v="$STAGING_VERSION" '$2 == "=>" && $3 ~ /^\.\/staging\// { print "replace " $1 " => " $1 " " v }' "$gomod"
  } > "$mod/go.mod"
  cat > "$mod/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  log "Resolving modules ($(grep -c '^replace' "$mod/go.mod") staging modules replaced with $STAGING_VERSION)"
  (cd "$mod" && go mod tidy >&2)
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${K8S_VERSION#1.}"
  ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=v$K8S_VERSION -X k8s.io/component-base/version.gitTreeState=clean"
  for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    if have "$cmd"; then continue; fi
    log "Compiling $cmd"
    (cd "$mod" && go build -trimpath -ldflags "$ldflags" -o "$BIN_DIR/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd")
    mv "$BIN_DIR/$cmd.tmp" "$BIN_DIR/$cmd"
  done
fi

if have etcd; then
  log "etcd v$ETCD_VERSION already in $BIN_DIR"
else
  log "Building etcd v$ETCD_VERSION from source (about 1 minute)"
  check_proxy "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
  mod="$work/etcd"; mkdir -p "$mod"
  printf 'module meshwright.local/etcd\n\ngo %s\n\nrequire go.etcd.io/etcd/server/v3 v%s\n' \
    "$(go env GOVERSION | sed 's/^go//; s/\([0-9]*\.[0-9]*\).*/\1/')" "$ETCD_VERSION" > "$mod/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > "$mod/tools.go"
  (cd "$mod" && go mod tidy >&2 && go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$BIN_DIR/etcd.tmp" "$BIN_DIR/etcd"
fi

if have kwok kwokctl; then
  log "kwok v$KWOK_VERSION already in $BIN_DIR"
else
  log "Building kwok and kwokctl v$KWOK_VERSION from source (about 2.5 minutes)"
  check_proxy "sigs.k8s.io/kwok@v$KWOK_VERSION"
  GOBIN="$work/kwok-bin" go install -trimpath -ldflags "-s -w" \
    "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@v$KWOK_VERSION"
  mv "$work/kwok-bin/kwok" "$work/kwok-bin/kwokctl" "$BIN_DIR/"
fi

log "All binaries ready in $BIN_DIR"
echo "$BIN_DIR"
