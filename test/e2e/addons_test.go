//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/testutil"
)

var addonServices = map[string][]string{
	"prometheus": {"prometheus"}, "grafana": {"grafana"}, "tracing": {"tracing", "jaeger-collector"}, "kiali": {"kiali"},
}

// The demo profile's mesh becomes Ready with all four add-ons available, their Services' EndpointSlices listing the
// ready pods on the rendered port names; their pods pass Pod Security "restricted"; toggling an add-on off prunes it;
// an add-on that can never be ready leaves the mesh Ready with AddonsReady False.
func TestDemoProfileAddons(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	mesh := &meshv1.ServiceMesh{ObjectMeta: metav1.ObjectMeta{Name: "observability"}, Spec: meshv1.ServiceMeshSpec{Profile: "demo"}}
	if err := k8sClient.Create(ctx, mesh); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteAndWait(t, mesh) })
	waitCurrent(t, mesh)
	testutil.Eventually(t, readyTimeout, func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(mesh), mesh); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(mesh.Status.Conditions, meshv1.ConditionAddonsReady); c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("AddonsReady = %+v", c)
		}
		for addon, services := range addonServices {
			for _, svc := range services {
				if err := serviceServesReadyPods(ctx, "istio-system", svc, addon); err != nil {
					return err
				}
			}
		}
		return nil
	})
	t.Logf("demo profile with four add-ons: Current, every add-on serving, after %s", time.Since(start).Round(time.Millisecond))

	t.Run("add-on pods pass Pod Security restricted", func(t *testing.T) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "restricted-addons",
			Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}}
		if err := k8sClient.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		for addon := range addonServices {
			dep := &appsv1.Deployment{}
			if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: addon}, dep); err != nil {
				t.Fatal(err)
			}
			// The pod runs under its own ServiceAccount, which admission looks up in the pod's namespace.
			sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: dep.Spec.Template.Spec.ServiceAccountName, Namespace: ns.Name}}
			if err := k8sClient.Create(ctx, sa); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: addon, Namespace: ns.Name, Labels: dep.Spec.Template.Labels},
				Spec: *dep.Spec.Template.Spec.DeepCopy()}
			if err := k8sClient.Create(ctx, pod, client.DryRunAll); err != nil {
				t.Errorf("a namespace enforcing restricted refuses the %s pod: %v", addon, err)
			}
		}
	})

	t.Run("toggling an add-on off prunes it", func(t *testing.T) {
		patch := client.MergeFrom(mesh.DeepCopy())
		mesh.Spec.Addons = &meshv1.Addons{Tracing: &meshv1.TracingAddon{Addon: meshv1.Addon{Mode: meshv1.AddonDisabled}}}
		if err := k8sClient.Patch(ctx, mesh, patch); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, readyTimeout, func() error {
			for _, name := range []string{"tracing", "jaeger-collector"} {
				if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: name}, &corev1.Service{}); !apierrors.IsNotFound(err) {
					return fmt.Errorf("Service %s not pruned (err %v)", name, err)
				}
			}
			return k8sClient.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "grafana"}, &appsv1.Deployment{})
		})
	})

	t.Run("an add-on that can never be ready leaves the mesh Ready", func(t *testing.T) {
		patch := client.MergeFrom(mesh.DeepCopy())
		mesh.Spec.Addons.Kiali = &meshv1.KialiAddon{Addon: meshv1.Addon{NodeSelector: map[string]string{"meshwright.dev/no-such-node": "true"}}}
		if err := k8sClient.Patch(ctx, mesh, patch); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, readyTimeout, func() error {
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(mesh), mesh); err != nil {
				return err
			}
			if mesh.Status.ObservedGeneration != mesh.Generation {
				return fmt.Errorf("generation %d not reconciled", mesh.Generation)
			}
			want := map[string]metav1.ConditionStatus{meshv1.ConditionReady: metav1.ConditionTrue,
				meshv1.ConditionControlPlaneReady: metav1.ConditionTrue, meshv1.ConditionAddonsReady: metav1.ConditionFalse}
			for typ, st := range want {
				if c := meta.FindStatusCondition(mesh.Status.Conditions, typ); c == nil || c.Status != st {
					return fmt.Errorf("%s = %+v, want %s", typ, c, st)
				}
			}
			return nil
		})
		if err := testutil.WantKStatus(mesh, "Current"); err != nil {
			t.Errorf("kstatus with a stuck add-on: %v", err)
		}
	})
}

// serviceServesReadyPods checks that a Service's EndpointSlices list the ready pods of app on every port name the
// Service declares.
func serviceServesReadyPods(ctx context.Context, namespace, service, app string) error {
	svc := &corev1.Service{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: service}, svc); err != nil {
		return err
	}
	dep := &appsv1.Deployment{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: app}, dep); err != nil {
		return err
	}
	if !available(dep) {
		return fmt.Errorf("add-on %s not available", app)
	}
	return endpointSlicesListReadyPods(ctx, namespace, service, dep.Status.AvailableReplicas)
}
