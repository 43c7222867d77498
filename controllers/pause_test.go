package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/testutil"
)

// setPaused sets or removes the pause annotation and waits until the controller shows it in status.
func setPaused(t *testing.T, mesh *meshv1.ServiceMesh, on bool) {
	t.Helper()
	patch := client.MergeFrom(mesh.DeepCopy())
	if on {
		metav1.SetMetaDataAnnotation(&mesh.ObjectMeta, meshv1.AnnotationPaused, "true")
	} else {
		delete(mesh.Annotations, meshv1.AnnotationPaused)
	}
	if err := k8sClient.Patch(context.Background(), mesh, patch); err != nil {
		t.Fatal(err)
	}
	waitForMesh(t, mesh, func(m *meshv1.ServiceMesh) error {
		if got := meta.IsStatusConditionTrue(m.Status.Conditions, meshv1.ConditionPaused); got != on {
			return fmt.Errorf("Paused is %v, want %v", got, on)
		}
		return nil
	})
}

// objectWritesSince returns the reconciler's writes since the count before, except those to a ServiceMesh's status.
func objectWritesSince(t *testing.T, before int64) []string {
	t.Helper()
	n := int(writes.Writes() - before)
	log := writes.Log()
	if n > len(log) {
		t.Fatalf("%d writes, more than the write log keeps", n)
	}
	var out []string
	for _, w := range log[len(log)-n:] {
		if !strings.HasPrefix(w, "status patch *v1alpha1.ServiceMesh ") {
			out = append(out, w)
		}
	}
	return out
}

func TestPauseStopsEveryWriteUntilResumed(t *testing.T) {
	ctx := context.Background()
	mesh := installReady(t, "paused")
	ns := mesh.Spec.Namespace
	setPaused(t, mesh, true)
	writesBefore := writes.Writes()

	t.Run("status says paused, and Ready still tells whether the serving istiod is available", func(t *testing.T) {
		ready := meta.FindStatusCondition(mesh.Status.Conditions, meshv1.ConditionReady)
		if ready == nil || ready.Status != metav1.ConditionTrue || ready.Reason != meshv1.ReasonPaused || !strings.HasPrefix(ready.Message, "Paused: ") {
			t.Errorf("Ready is %+v, want True with reason Paused", ready)
		}
		if meta.FindStatusCondition(mesh.Status.Conditions, meshv1.ConditionReconciling) != nil {
			t.Error("a paused mesh reports Reconciling")
		}
		if err := testutil.WantKStatus(mesh, status.CurrentStatus); err != nil {
			t.Errorf("a paused mesh whose istiod is available and whose spec did not change: %v", err)
		}
	})

	t.Run("a deleted mesh ConfigMap is not restored, and nothing is written", func(t *testing.T) {
		cm := &corev1.ConfigMap{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "istio"}, cm); err != nil {
			t.Fatal(err)
		}
		reconcileAfter(t, func() {
			if err := k8sClient.Delete(ctx, cm); err != nil {
				t.Fatal(err)
			}
		})
		reconcileAfter(t, func() { poke(t, mesh) })
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(cm), cm); !apierrors.IsNotFound(err) {
			t.Errorf("the ConfigMap was restored while paused (err %v)", err)
		}
		if got := writes.Writes() - writesBefore; got != 0 {
			t.Errorf("a paused mesh issued %d writes: %v", got, writes.Details(int(got)))
		}
	})

	t.Run("Ready follows the serving istiod while paused, so kstatus never reports an outage as Current", func(t *testing.T) {
		dep := &appsv1.Deployment{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "istiod"}, dep); err != nil {
			t.Fatal(err)
		}
		dep.Status.AvailableReplicas, dep.Status.ReadyReplicas = 0, 0
		if err := k8sClient.Status().Update(ctx, dep); err != nil {
			t.Fatal(err)
		}
		waitForMesh(t, mesh, func(m *meshv1.ServiceMesh) error {
			if c := meta.FindStatusCondition(m.Status.Conditions, meshv1.ConditionReady); c == nil || c.Status != metav1.ConditionFalse || c.Reason != meshv1.ReasonPaused {
				return fmt.Errorf("Ready is %+v, want False with reason Paused", c)
			}
			return nil
		})
		if err := testutil.WantKStatus(mesh, status.InProgressStatus); err != nil {
			t.Error(err)
		}
		markRolledOut(t, ns, "istiod")
	})

	dep := &appsv1.Deployment{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "istiod"}, dep); err != nil {
		t.Fatal(err)
	}
	t.Run("a spec change waits, and kstatus says so", func(t *testing.T) {
		patch := client.MergeFrom(mesh.DeepCopy())
		mesh.Spec.ControlPlane = &meshv1.ControlPlane{LogLevel: "debug"}
		reconcileAfter(t, func() {
			if err := k8sClient.Patch(ctx, mesh, patch); err != nil {
				t.Fatal(err)
			}
		})
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(mesh), mesh); err != nil {
			t.Fatal(err)
		}
		if mesh.Status.ObservedGeneration == mesh.Generation {
			t.Errorf("observedGeneration %d follows a spec change made while paused", mesh.Status.ObservedGeneration)
		}
		if err := testutil.WantKStatus(mesh, status.InProgressStatus); err != nil {
			t.Error(err)
		}
		live := &appsv1.Deployment{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(dep), live); err != nil {
			t.Fatal(err)
		}
		if live.Generation != dep.Generation {
			t.Errorf("istiod changed while paused: generation %d, was %d", live.Generation, dep.Generation)
		}
		// Only the ServiceMesh's own status follows the new generation (the Paused condition's observedGeneration).
		if got := objectWritesSince(t, writesBefore); len(got) != 0 {
			t.Errorf("a paused mesh wrote to its objects: %v", got)
		}
	})

	t.Run("removing the annotation resumes: drift is repaired and the spec change applied", func(t *testing.T) {
		setPaused(t, mesh, false)
		testutil.Eventually(t, waitTimeout, func() error {
			return k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "istio"}, &corev1.ConfigMap{})
		})
		waitForMesh(t, mesh, reconciled)
		markRolledOut(t, ns, "istiod")
		waitForMesh(t, mesh, condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady))
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(dep), dep); err != nil {
			t.Fatal(err)
		}
		if args := strings.Join(dep.Spec.Template.Spec.Containers[0].Args, " "); !strings.Contains(args, "debug") {
			t.Errorf("istiod args do not carry the log level set while paused: %s", args)
		}
	})
}

func TestDeletingAPausedMeshWaitsForTheResume(t *testing.T) {
	ctx := context.Background()
	mesh := installReady(t, "paused-delete")
	setPaused(t, mesh, true)

	reconcileAfter(t, func() {
		if err := k8sClient.Delete(ctx, mesh); err != nil {
			t.Fatal(err)
		}
	})
	waitForMesh(t, mesh, func(m *meshv1.ServiceMesh) error {
		if c := meta.FindStatusCondition(m.Status.Conditions, meshv1.ConditionPaused); c == nil || !strings.Contains(c.Message, "deletion") {
			return fmt.Errorf("Paused condition %+v does not say the deletion waits", c)
		}
		return nil
	})
	if !istiodExists(t, mesh.Spec.Namespace) {
		t.Error("istiod was deleted while the mesh was paused")
	}

	// Resuming lets the deletion finish at once, so wait for the mesh to be gone rather than for its status.
	patch := client.MergeFrom(mesh.DeepCopy())
	delete(mesh.Annotations, meshv1.AnnotationPaused)
	if err := k8sClient.Patch(ctx, mesh, patch); err != nil {
		t.Fatal(err)
	}
	deleteMesh(t, mesh)
	if istiodExists(t, mesh.Spec.Namespace) {
		t.Error("istiod survived the deletion after the pause was lifted")
	}
}
