package controllers

import (
	"context"
	"testing"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// BenchmarkSteadyStateReconcile calls Reconcile on a Ready mesh whose spec did not change: the render comes from the
// cache and every object is in sync, so this is the CPU cost of a reconcile that finds nothing to do.
func BenchmarkSteadyStateReconcile(b *testing.B) {
	mesh := installReady(b, "bench")
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(mesh)}
	writesBefore := writes.Writes()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := reconciler.Reconcile(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(writes.Writes()-writesBefore)/float64(b.N), "writes/op")
	if writes.Writes() != writesBefore {
		b.Errorf("steady-state reconciles wrote %d times", writes.Writes()-writesBefore)
	}
}
