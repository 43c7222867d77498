#!/usr/bin/env bash
# The embedded default (`make demo`): a local kwok cluster, the CRDs, the operator running as a process against the
# cluster, and the sample ServiceMesh with an ingress gateway and the add-ons; waits (bounded) for its final state and
# prints what the operator made and how to reach Grafana and Kiali.
set -euo pipefail
cd "$(dirname "$0")/.."

start=$(date +%s)
step() { printf '\n== [%ss] %s\n' "$(( $(date +%s) - start ))" "$*"; }

step "Kubernetes binaries (built from source on the first run of this machine; later runs reuse the cache)"
BIN=$(hack/k8s-binaries.sh | tail -n1)
export PATH="$BIN:$PATH"

step "Local cluster"
export KUBECONFIG
KUBECONFIG=$(hack/cluster.sh up | tail -n1)
kubectl get nodes

step "Building the operator"
go build -o bin/manager .

step "Installing the ServiceMesh CRD"
kubectl apply --server-side -f config/crd/bases
kubectl wait --for=condition=Established crd/servicemeshes.mesh.meshwright.dev --timeout=60s

step "Starting fakeistiod, istiod's stand-in for pod injection (log: bin/demo-fakeistiod.log)"
# kwok runs no istiod; without an answer to its injection webhook, injected pods (gateways) could not be created.
fakeistiod=
if socket=$(hack/cluster.sh egress-socket); then
  go build -o bin/fakeistiod ./hack/fakeistiod
  bin/fakeistiod --kubeconfig "$KUBECONFIG" --egress-socket "$socket" > bin/demo-fakeistiod.log 2>&1 &
  fakeistiod=$!
fi
trap 'kill $fakeistiod 2>/dev/null || true' EXIT

step "Starting the operator (log: bin/demo-operator.log)"
bin/manager --health-probe-bind-address=127.0.0.1:0 > bin/demo-operator.log 2>&1 &
operator=$!
trap 'kill $operator $fakeistiod 2>/dev/null || true' EXIT

step "Applying the ServiceMesh sample with an ingress gateway and the observability add-ons"
kubectl apply --server-side -f config/samples/mesh_v1alpha1_servicemesh_demo.yaml

step "Waiting (at most ${DEMO_TIMEOUT:-300}s) for the ServiceMesh to reach its final state"
deadline=$(( $(date +%s) + ${DEMO_TIMEOUT:-300} ))
while :; do
  if ! kill -0 "$operator" 2>/dev/null; then
    echo "The operator exited; its log:" >&2; tail -n 50 bin/demo-operator.log >&2; exit 1
  fi
  gen=$(kubectl get sm default -o jsonpath='{.metadata.generation}')
  observed=$(kubectl get sm default -o jsonpath='{.status.observedGeneration}')
  ready=$(kubectl get sm default -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')
  reason=$(kubectl get sm default -o jsonpath='{.status.conditions[?(@.type=="Ready")].reason}')
  stalled=$(kubectl get sm default -o jsonpath='{.status.conditions[?(@.type=="Stalled")].status}')
  if [ "$gen" = "$observed" ] && { [ "$ready" = True ] || [ "$stalled" = True ] || [ "$reason" = NotImplemented ]; }; then
    break
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "Timed out; the ServiceMesh is still progressing (Ready=$ready, reason $reason)." >&2; break
  fi
  sleep 2
done

step "kubectl get sm"
kubectl get sm -o wide
echo
kubectl get sm default -o jsonpath='{range .status.conditions[*]}{.type}{"="}{.status}{" ("}{.reason}{"): "}{.message}{"\n"}{end}'

step "The ingress gateway"
kubectl get sm default -o jsonpath='{range .status.gateways[*]}{"gateway "}{.namespace}{"/"}{.name}{": "}{.readyReplicas}{" ready replicas, address "}{.address}{", revision "}{.revision}{"\n"}{end}'
kubectl -n istio-ingress get deployment,service,endpointslices -l app=istio-ingressgateway 2>/dev/null || kubectl -n istio-ingress get deployment,service

step "The add-ons"
kubectl get sm default -o jsonpath='{range .status.conditions[?(@.type=="AddonsReady")]}{.type}{"="}{.status}{": "}{.message}{"\n"}{end}'
kubectl -n istio-system get deployment prometheus grafana tracing kiali
cat <<'REACH'
Reach them from this machine (on a real cluster; kwok runs no containers, so here the pods only look Running):
  kubectl -n istio-system port-forward svc/grafana 3000:3000      # then http://localhost:3000 (anonymous Viewer)
  kubectl -n istio-system port-forward svc/kiali 20001:20001      # then http://localhost:20001/kiali
  kubectl -n istio-system port-forward svc/prometheus 9090:9090   # then http://localhost:9090
  kubectl -n istio-system port-forward svc/tracing 16686:16686    # then http://localhost:16686 (Jaeger)
Grafana's admin password: kubectl -n istio-system get secret grafana-admin -o jsonpath='{.data.password}' | base64 -d
REACH

step "Objects the operator made"
kubectl get all,mutatingwebhookconfigurations,validatingwebhookconfigurations,peerauthentications -A -l app.kubernetes.io/managed-by=meshwright 2>/dev/null || true
echo "Istio CRDs installed: $(kubectl get crd -o name | grep -c '\.istio\.io$' || true)"

step "Done in $(( $(date +%s) - start ))s. The cluster keeps running: KUBECONFIG=$KUBECONFIG; remove it with 'make cluster-down'."
