//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshwright/meshwright/internal/testutil"
)

// BenchmarkInstallToReady measures the time from creating the sample ServiceMesh to kstatus Current (istiod rolled
// out on kwok's simulated nodes). Deletion between iterations is not timed.
func BenchmarkInstallToReady(b *testing.B) {
	var total time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		mesh := applySample(b, "mesh_v1alpha1_servicemesh_minimal.yaml")
		waitCurrent(b, mesh)
		total += time.Since(start)
		b.StopTimer()
		deleteAndWait(b, mesh)
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-ready/op")
}

// BenchmarkSteadyStateReconcile installs the sample mesh, then forces b.N reconciles of the unchanged mesh (an
// annotation change) and reports, per reconcile, the operator's API requests by kind and its CPU time, plus its
// resident memory after install.
func BenchmarkSteadyStateReconcile(b *testing.B) {
	mesh := applySample(b, "mesh_v1alpha1_servicemesh_minimal.yaml")
	b.Cleanup(func() { deleteAndWait(b, mesh) })
	waitCurrent(b, mesh)
	rss := procStatusKB(b, "VmRSS")

	before := operatorMetrics(b)
	cpuBefore := cpuTicks(b)
	reconciles := sumMetric(before, "controller_runtime_reconcile_total", `controller="servicemesh"`)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		patch := client.MergeFrom(mesh.DeepCopy())
		if mesh.Annotations == nil {
			mesh.Annotations = map[string]string{}
		}
		mesh.Annotations["bench.meshwright.dev/poke"] = strconv.Itoa(i)
		if err := k8sClient.Patch(context.Background(), mesh, patch); err != nil {
			b.Fatal(err)
		}
		want := reconciles + float64(i+1)
		testutil.Eventually(b, time.Minute, func() error {
			if got := sumMetric(operatorMetrics(b), "controller_runtime_reconcile_total", `controller="servicemesh"`); got < want {
				return fmt.Errorf("%v reconciles, want %v", got, want)
			}
			return nil
		})
	}
	b.StopTimer()
	after := operatorMetrics(b)
	n := sumMetric(after, "controller_runtime_reconcile_total", `controller="servicemesh"`) - reconciles
	var writes, reads float64
	for _, method := range []string{"POST", "PUT", "PATCH", "DELETE"} {
		writes += sumMetric(after, "rest_client_requests_total", `method="`+method+`"`) -
			sumMetric(before, "rest_client_requests_total", `method="`+method+`"`)
	}
	reads = sumMetric(after, "rest_client_requests_total", `method="GET"`) - sumMetric(before, "rest_client_requests_total", `method="GET"`)
	cpu := float64(cpuTicks(b)-cpuBefore) * 10 // clock ticks of 10 ms
	b.ReportMetric(writes/n, "writes/reconcile")
	b.ReportMetric(reads/n, "reads/reconcile")
	b.ReportMetric(cpu/n, "cpu-ms/reconcile")
	b.ReportMetric(float64(rss)/1024, "rss-MiB-after-install")
	if writes != 0 {
		b.Errorf("steady-state reconciles wrote %v times, want 0", writes)
	}
}

func procStatusKB(b *testing.B, field string) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", operator.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, field+":") {
			kb, _ := strconv.Atoi(strings.Fields(line)[1])
			return kb
		}
	}
	b.Fatalf("no %s in /proc status", field)
	return 0
}

// cpuTicks returns the operator's user+system CPU time in clock ticks (USER_HZ, 100 per second on Linux).
func cpuTicks(b *testing.B) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", operator.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return utime + stime
}
