package controllers

import (
	"context"
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshwright/meshwright/internal/testutil"
)

func TestDriftIsRepaired(t *testing.T) {
	ctx := context.Background()
	mesh := installReady(t, "drift")
	ns := mesh.Spec.Namespace

	t.Run("a deleted mesh ConfigMap is restored", func(t *testing.T) {
		cm := &corev1.ConfigMap{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "istio"}, cm); err != nil {
			t.Fatal(err)
		}
		if err := k8sClient.Delete(ctx, cm); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, waitTimeout, func() error {
			restored := &corev1.ConfigMap{}
			if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "istio"}, restored); err != nil {
				return err
			}
			if restored.UID == cm.UID || restored.Data["mesh"] == "" {
				return fmt.Errorf("not restored yet")
			}
			return nil
		})
	})

	t.Run("an edited istiod image is put back", func(t *testing.T) {
		dep := &appsv1.Deployment{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "istiod"}, dep); err != nil {
			t.Fatal(err)
		}
		want := dep.Spec.Template.Spec.Containers[0].Image
		patch := client.MergeFrom(dep.DeepCopy())
		dep.Spec.Template.Spec.Containers[0].Image = "example.com/not-istiod:1"
		if err := k8sClient.Patch(ctx, dep, patch, client.FieldOwner("kubectl-edit")); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, waitTimeout, func() error {
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(dep), dep); err != nil {
				return err
			}
			if got := dep.Spec.Template.Spec.Containers[0].Image; got != want {
				return fmt.Errorf("image is %s, want %s", got, want)
			}
			return nil
		})
	})

	t.Run("repairs are reported as events on the ServiceMesh", func(t *testing.T) {
		testutil.Eventually(t, waitTimeout, func() error {
			events := &eventsv1.EventList{}
			if err := k8sClient.List(ctx, events); err != nil {
				return err
			}
			for _, e := range events.Items {
				if e.Regarding.Kind == "ServiceMesh" && e.Regarding.Name == mesh.Name && e.Reason == "DriftRepaired" {
					return nil
				}
			}
			return fmt.Errorf("no DriftRepaired event for ServiceMesh %s among %d events", mesh.Name, len(events.Items))
		})
	})

	t.Run("a field Meshwright does not set is left alone", func(t *testing.T) {
		dep := &appsv1.Deployment{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "istiod"}, dep); err != nil {
			t.Fatal(err)
		}
		patch := client.MergeFrom(dep.DeepCopy())
		if dep.Spec.Template.Annotations == nil {
			dep.Spec.Template.Annotations = map[string]string{}
		}
		dep.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] = "2026-11-22T00:00:00Z"
		if err := k8sClient.Patch(ctx, dep, patch, client.FieldOwner("kubectl-rollout")); err != nil {
			t.Fatal(err)
		}
		reconcileAfter(t, func() { poke(t, mesh) })
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(dep), dep); err != nil {
			t.Fatal(err)
		}
		if dep.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == "" {
			t.Error("a restart annotation set by kubectl was removed")
		}
	})
}
