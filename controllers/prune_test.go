package controllers

import (
	"context"
	"fmt"
	"slices"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
)

func TestPruneRemovesWhatTheNewRenderNoLongerHas(t *testing.T) {
	ctx := context.Background()
	mesh := installReady(t, "prune")
	hpaID := mesh.Spec.Namespace + "_istiod_autoscaling_HorizontalPodAutoscaler"
	if !slices.Contains(mesh.Status.Inventory.Entries, hpaID) {
		t.Fatalf("the default render should have an istiod autoscaler; inventory: %v", mesh.Status.Inventory.Entries)
	}

	// Fixed replicas replace the autoscaler.
	updateMesh(t, mesh, func(m *meshv1.ServiceMesh) { m.Spec.ControlPlane = &meshv1.ControlPlane{Replicas: ptr.To[int32](2)} })

	if slices.Contains(mesh.Status.Inventory.Entries, hpaID) {
		t.Errorf("inventory still lists the pruned autoscaler")
	}
	err := k8sClient.Get(ctx, client.ObjectKey{Namespace: mesh.Spec.Namespace, Name: "istiod"}, &autoscalingv2.HorizontalPodAutoscaler{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("the autoscaler was not pruned: %v", err)
	}
}

func TestPruneSparesObjectsWithoutTheOwnerLabel(t *testing.T) {
	ctx := context.Background()
	mesh := installReady(t, "prune-spare")

	// An inventory entry whose object is not (or no longer) labelled as this mesh's, e.g. after a user took it
	// over, must be dropped from the inventory without deleting the object.
	userCM := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: mesh.Spec.Namespace, Name: "taken-over"}}
	if err := k8sClient.Create(ctx, userCM); err != nil {
		t.Fatal(err)
	}
	entry := mesh.Spec.Namespace + "_taken-over__ConfigMap"
	patch := client.MergeFrom(mesh.DeepCopy())
	mesh.Status.Inventory.Entries = append(mesh.Status.Inventory.Entries, entry)
	if err := k8sClient.Status().Patch(ctx, mesh, patch); err != nil {
		t.Fatal(err)
	}
	reconcileAfter(t, func() { poke(t, mesh) })
	waitForMesh(t, mesh, func(m *meshv1.ServiceMesh) error {
		if slices.Contains(m.Status.Inventory.Entries, entry) {
			return fmt.Errorf("inventory still lists %s", entry)
		}
		return nil
	})
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(userCM), userCM); err != nil {
		t.Errorf("an object without the owner label was pruned: %v", err)
	}
}
