#!/usr/bin/env bash
# `make bench`: prints the performance figures. Not timed tests: benchmarks report numbers, nothing here fails on a
# slow machine except a steady state that writes.
#   - in-process: CPU time and allocations of a steady-state Reconcile (envtest)
#   - kwok cluster, operator as a process: create-to-Ready latency, API requests and CPU per steady-state reconcile,
#     operator RSS after install
#   - test/perf: one table of install figures on fresh kwok clusters next to the floor measured in the same run
#     (median of BENCH_TRIALS trials), with the time each reconcile phase took
#   - test/perf's scale trial (BENCH_SCALE=false skips it): a populated cluster, pod churn, and a RevisionBased
#     upgrade of 200 Deployments next to a batch-restart baseline (about 5 min)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(hack/k8s-binaries.sh | tail -n1)
export KUBEBUILDER_ASSETS="$BIN" PATH="$BIN:$PATH"

echo "== steady-state Reconcile, in process (envtest)"
go test -count=1 -run '^$' -bench BenchmarkSteadyStateReconcile -benchtime 200x ./controllers/ | grep -E '^(Benchmark|ok|FAIL|---)'
echo "== kwok cluster, operator as a process"
hack/e2e.sh -run '^$' -bench . -benchtime "${BENCH_ITERATIONS:-5}x" | grep -E '^(Benchmark|ok|FAIL|---|==)'
echo "== install figures on fresh kwok clusters, next to the floor (test/perf)"
go run ./test/perf -trials "${BENCH_TRIALS:-5}" -rest "${BENCH_REST:-60s}" -scale="${BENCH_SCALE:-true}"
