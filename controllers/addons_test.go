package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/render"
	"github.com/meshwright/meshwright/internal/testutil"
)

// Add-ons follow the control plane, never hold Ready, keep their generated secrets across reconciles, are pruned when
// disabled, and leave their data volume behind.
func TestAddonsFollowTheControlPlaneAndNeverHoldReady(t *testing.T) {
	ctx := context.Background()
	mesh := createMesh(t, "addons", func(m *meshv1.ServiceMesh) {
		m.Spec.Profile = "demo"
		m.Spec.Addons = &meshv1.Addons{Prometheus: &meshv1.PrometheusAddon{Storage: &meshv1.AddonStorage{Size: resource.MustParse("1Gi")}}}
	})
	waitForMesh(t, mesh, condition(meshv1.ConditionAddonsReady, metav1.ConditionFalse, meshv1.ReasonWaiting))
	absent(t, &appsv1.Deployment{}, mesh.Spec.Namespace, render.ComponentGrafana)

	markRolledOut(t, mesh.Spec.Namespace, "istiod")
	waitForMesh(t, mesh, condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady))
	waitForMesh(t, mesh, condition(meshv1.ConditionAddonsReady, metav1.ConditionFalse, meshv1.ReasonProgressing))
	if c := meta.FindStatusCondition(mesh.Status.Conditions, meshv1.ConditionReady); !strings.Contains(c.Message, "add-ons not ready") {
		t.Errorf("Ready's message %q does not mention the add-ons", c.Message)
	}
	waitForEvent(t, mesh, "AddonNotReady")
	for _, name := range []string{render.ComponentPrometheus, render.ComponentGrafana, render.ComponentTracing, render.ComponentKiali} {
		exists(t, &appsv1.Deployment{}, mesh.Spec.Namespace, name)
		markRolledOut(t, mesh.Spec.Namespace, name)
	}
	waitForMesh(t, mesh, condition(meshv1.ConditionAddonsReady, metav1.ConditionTrue, meshv1.ReasonReady))

	secret := &corev1.Secret{}
	exists(t, secret, mesh.Spec.Namespace, render.GrafanaAdminSecret)
	password := string(secret.Data["password"])
	exists(t, &corev1.Secret{}, mesh.Spec.Namespace, render.KialiSigningSecret)
	exists(t, &corev1.PersistentVolumeClaim{}, mesh.Spec.Namespace, "prometheus-data")
	reconcileAfter(t, func() { poke(t, mesh) })
	exists(t, secret, mesh.Spec.Namespace, render.GrafanaAdminSecret)
	if string(secret.Data["password"]) != password || len(password) < 20 {
		t.Errorf("Grafana's admin password changed across reconciles (or is short): %q", password)
	}

	patch := client.MergeFrom(mesh.DeepCopy())
	mesh.Spec.Addons.Grafana = &meshv1.GrafanaAddon{Addon: meshv1.Addon{Mode: meshv1.AddonDisabled}}
	mesh.Spec.Addons.Prometheus = &meshv1.PrometheusAddon{Addon: meshv1.Addon{Mode: meshv1.AddonDisabled}}
	if err := k8sClient.Patch(ctx, mesh, patch); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, waitTimeout, func() error {
		for _, o := range []struct {
			obj  client.Object
			name string
		}{{&appsv1.Deployment{}, render.ComponentGrafana}, {&corev1.Secret{}, render.GrafanaAdminSecret}, {&appsv1.Deployment{}, render.ComponentPrometheus}} {
			if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: mesh.Spec.Namespace, Name: o.name}, o.obj); !apierrors.IsNotFound(err) {
				return fmt.Errorf("%T %s not pruned (err %v)", o.obj, o.name, err)
			}
		}
		return nil
	})
	pvc := &corev1.PersistentVolumeClaim{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: mesh.Spec.Namespace, Name: "prometheus-data"}, pvc); err != nil || !pvc.DeletionTimestamp.IsZero() {
		t.Errorf("Prometheus's data volume was deleted with the add-on (err %v); it must be kept", err)
	}
	if len(pvc.OwnerReferences) != 0 {
		t.Errorf("the data volume has owner references %v; the garbage collector would delete it with the mesh", pvc.OwnerReferences)
	}
	exists(t, &appsv1.Deployment{}, mesh.Spec.Namespace, render.ComponentKiali)
}

// An add-on that can never become ready leaves the mesh Ready, with AddonsReady False.
func TestAnAddonThatCannotBecomeReadyLeavesTheMeshReady(t *testing.T) {
	mesh := createMesh(t, "addon-stuck", func(m *meshv1.ServiceMesh) {
		m.Spec.Addons = &meshv1.Addons{Grafana: &meshv1.GrafanaAddon{Addon: meshv1.Addon{NodeSelector: map[string]string{"no-such-node": "true"}}}}
	})
	markRolledOut(t, mesh.Spec.Namespace, "istiod")
	waitForMesh(t, mesh, condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady))
	waitForMesh(t, mesh, condition(meshv1.ConditionAddonsReady, metav1.ConditionFalse, ""))
	if c := meta.FindStatusCondition(mesh.Status.Conditions, meshv1.ConditionControlPlaneReady); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("ControlPlaneReady = %+v", c)
	}
}
