package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/gatewayapi"
	"github.com/meshwright/meshwright/internal/render"
	"github.com/meshwright/meshwright/internal/testutil"
)

// markDaemonSetRolledOut plays the DaemonSet controller for one node, which envtest does not run.
func markDaemonSetRolledOut(t testing.TB, namespace, name string) {
	t.Helper()
	ctx := context.Background()
	testutil.Eventually(t, waitTimeout, func() error {
		ds := &appsv1.DaemonSet{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, ds); err != nil {
			return err
		}
		ds.Status = appsv1.DaemonSetStatus{ObservedGeneration: ds.Generation, DesiredNumberScheduled: 1,
			CurrentNumberScheduled: 1, UpdatedNumberScheduled: 1, NumberReady: 1, NumberAvailable: 1}
		return k8sClient.Status().Update(ctx, ds)
	})
}

func absent(t testing.TB, obj client.Object, namespace, name string) {
	t.Helper()
	err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, obj)
	if !apierrors.IsNotFound(err) {
		t.Fatalf("%T %s/%s exists (err %v); it must wait for what it depends on", obj, namespace, name, err)
	}
}

func exists(t testing.TB, obj client.Object, namespace, name string) {
	t.Helper()
	testutil.Eventually(t, waitTimeout, func() error {
		return k8sClient.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, obj)
	})
}

// Gateways are applied only once the injector of the revision they use is ready, never make Ready wait for a load
// balancer, report their replicas and address, and are pruned when removed from the spec (their namespace stays).
func TestGatewaysFollowTheControlPlane(t *testing.T) {
	ctx := context.Background()
	mesh := createMesh(t, "gateways", func(m *meshv1.ServiceMesh) {
		m.Spec.Gateways = []meshv1.Gateway{
			{Name: "istio-ingressgateway", Namespace: "gateways-ingress"},
			{Name: "istio-egressgateway", Namespace: "gateways-system", Type: meshv1.GatewayEgress, Replicas: ptr.To[int32](1)},
		}
	})
	waitForMesh(t, mesh, condition(meshv1.ConditionGatewaysReady, metav1.ConditionFalse, meshv1.ReasonWaiting))
	absent(t, &appsv1.Deployment{}, "gateways-ingress", "istio-ingressgateway")

	markRolledOut(t, mesh.Spec.Namespace, "istiod")
	waitForMesh(t, mesh, condition(meshv1.ConditionGatewaysReady, metav1.ConditionFalse, meshv1.ReasonProgressing))
	if c := meta.FindStatusCondition(mesh.Status.Conditions, meshv1.ConditionReady); c.Status != metav1.ConditionFalse ||
		!strings.Contains(c.Message, "gateway") {
		t.Errorf("Ready while the gateways roll out = %+v; want False naming the gateways", c)
	}
	markRolledOut(t, "gateways-ingress", "istio-ingressgateway")
	markRolledOut(t, "gateways-system", "istio-egressgateway")
	waitForMesh(t, mesh, condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady))
	if c := meta.FindStatusCondition(mesh.Status.Conditions, meshv1.ConditionGatewaysReady); c.Status != metav1.ConditionTrue {
		t.Errorf("GatewaysReady = %+v; a LoadBalancer Service without an address must not hold it", c)
	}
	if len(mesh.Status.Gateways) != 2 {
		t.Fatalf("status.gateways = %+v; want both gateways", mesh.Status.Gateways)
	}
	for _, g := range mesh.Status.Gateways {
		if g.ReadyReplicas != 1 || g.Address == "" || g.Revision != "default" {
			t.Errorf("gateway status %+v; want 1 ready replica, the cluster IP and revision default", g)
		}
	}
	names := []string{}
	for _, c := range mesh.Status.Components {
		names = append(names, c.Name)
	}
	for _, want := range []string{"gateway/gateways-ingress/istio-ingressgateway", "gateway/gateways-system/istio-egressgateway"} {
		if !slices.Contains(names, want) {
			t.Errorf("status.components %v lacks %s", names, want)
		}
	}

	patch := client.MergeFrom(mesh.DeepCopy())
	mesh.Spec.Gateways = mesh.Spec.Gateways[1:]
	if err := k8sClient.Patch(ctx, mesh, patch); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, waitTimeout, func() error {
		err := k8sClient.Get(ctx, client.ObjectKey{Namespace: "gateways-ingress", Name: "istio-ingressgateway"}, &appsv1.Deployment{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("the removed gateway's Deployment is still there (err %v)", err)
		}
		return nil
	})
	ns := &corev1.Namespace{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Name: "gateways-ingress"}, ns); err != nil || !ns.DeletionTimestamp.IsZero() {
		t.Errorf("the removed gateway's namespace was deleted (err %v, %v); namespaces are never deleted", err, ns.DeletionTimestamp)
	}
}

// A misspelt gateway value is a Stalled naming the key, and the running control plane is left alone.
func TestAGatewayValueTypoStallsNamingTheKey(t *testing.T) {
	ctx := context.Background()
	mesh := installReady(t, "gateway-typo")
	patch := client.MergeFrom(mesh.DeepCopy())
	mesh.Spec.Gateways = []meshv1.Gateway{{Name: "ingress", Namespace: "gateway-typo-system",
		Values: &apiextensionsv1.JSON{Raw: []byte(`{"service":{"typ":"NodePort"}}`)}}}
	if err := k8sClient.Patch(ctx, mesh, patch); err != nil {
		t.Fatal(err)
	}
	waitForMesh(t, mesh, condition(meshv1.ConditionStalled, metav1.ConditionTrue, meshv1.ReasonInvalidSpec))
	if c := meta.FindStatusCondition(mesh.Status.Conditions, meshv1.ConditionStalled); !strings.Contains(c.Message, "spec.gateways[0].values.service.typ") {
		t.Errorf("Stalled message %q does not name the key", c.Message)
	}
	exists(t, &appsv1.Deployment{}, mesh.Spec.Namespace, "istiod")
	absent(t, &appsv1.Deployment{}, mesh.Spec.Namespace, "ingress")
}

// A gateway in a namespace that turns injection off would run without its proxy: Stalled, naming the field.
func TestAGatewayInANamespaceWithoutInjectionStalls(t *testing.T) {
	ctx := context.Background()
	if err := k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "no-injection",
		Labels: map[string]string{"istio-injection": "disabled"}}}); err != nil {
		t.Fatal(err)
	}
	mesh := createMesh(t, "gateway-noinject", func(m *meshv1.ServiceMesh) {
		m.Spec.Gateways = []meshv1.Gateway{{Name: "ingress", Namespace: "no-injection"}}
	})
	waitForMesh(t, mesh, condition(meshv1.ConditionStalled, metav1.ConditionTrue, meshv1.ReasonInvalidSpec))
	if c := meta.FindStatusCondition(mesh.Status.Conditions, meshv1.ConditionStalled); !strings.Contains(c.Message, "spec.gateways[0].namespace") {
		t.Errorf("Stalled message %q does not name the field", c.Message)
	}
}

// Ambient installs in order istiod → CNI → ztunnel, each waited for; without the Gateway API CRDs the mesh is Ready
// for L4 and says waypoints are unavailable, until spec.gatewayAPI.installCRDs brings them.
func TestAmbientInstallsInOrder(t *testing.T) {
	ctx := context.Background()
	mesh := createMesh(t, "ambient", func(m *meshv1.ServiceMesh) {
		m.Spec.Profile = meshv1.ProfileAmbient
		m.Spec.CRDDeletionPolicy = meshv1.CRDDeletionPolicyDelete
	})
	waitForMesh(t, mesh, condition(meshv1.ConditionCNIReady, metav1.ConditionFalse, meshv1.ReasonWaiting))
	absent(t, &appsv1.DaemonSet{}, "kube-system", "istio-cni-node")
	absent(t, &appsv1.DaemonSet{}, mesh.Spec.Namespace, "ztunnel")

	markRolledOut(t, mesh.Spec.Namespace, "istiod")
	exists(t, &appsv1.DaemonSet{}, "kube-system", "istio-cni-node")
	waitForMesh(t, mesh, condition(meshv1.ConditionZtunnelReady, metav1.ConditionFalse, meshv1.ReasonWaiting))
	absent(t, &appsv1.DaemonSet{}, mesh.Spec.Namespace, "ztunnel")

	markDaemonSetRolledOut(t, "kube-system", "istio-cni-node")
	exists(t, &appsv1.DaemonSet{}, mesh.Spec.Namespace, "ztunnel")
	markDaemonSetRolledOut(t, mesh.Spec.Namespace, "ztunnel")
	waitForMesh(t, mesh, condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady))
	waitForMesh(t, mesh, condition(meshv1.ConditionWaypointsAvailable, metav1.ConditionFalse, meshv1.ReasonGatewayAPIMissing))

	patch := client.MergeFrom(mesh.DeepCopy())
	mesh.Spec.GatewayAPI = &meshv1.GatewayAPI{InstallCRDs: true}
	if err := k8sClient.Patch(ctx, mesh, patch); err != nil {
		t.Fatal(err)
	}
	waitForMesh(t, mesh, condition(meshv1.ConditionWaypointsAvailable, metav1.ConditionTrue, meshv1.ReasonReady))
	crd := &apiextensionsv1.CustomResourceDefinition{}
	exists(t, crd, "", "gateways."+gatewayapi.Group)
	if crd.Labels[render.LabelOwner] != mesh.Name || crd.Annotations[gatewayapi.ChannelAnnotation] != "standard" {
		t.Errorf("Gateway CRD labels %v annotations %v; want Meshwright's standard channel", crd.Labels, crd.Annotations)
	}
}

// Gateway API CRDs someone else installed are never updated.
func TestForeignGatewayAPICRDsAreLeftAlone(t *testing.T) {
	ctx := context.Background()
	crds, err := gatewayapi.CRDs()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(crds, func(c *unstructured.Unstructured) bool { return c.GetName() == "referencegrants."+gatewayapi.Group })
	theirs := crds[i].DeepCopy()
	// An earlier test's mesh with crdDeletionPolicy Delete may still be deleting it.
	waitCRDsGone(t, theirs.GetName())
	annotations := theirs.GetAnnotations()
	annotations[gatewayapi.ChannelAnnotation] = gatewayapi.ChannelExperimental
	annotations[gatewayapi.BundleVersionAnnotation] = "v1.5.0"
	theirs.SetAnnotations(annotations)
	if err := k8sClient.Create(ctx, theirs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := k8sClient.Delete(ctx, theirs); err != nil && !apierrors.IsNotFound(err) {
			t.Error(err)
		}
		waitCRDsGone(t, theirs.GetName())
	})
	mesh := installReady(t, "foreign-gwapi", func(m *meshv1.ServiceMesh) {
		m.Spec.GatewayAPI = &meshv1.GatewayAPI{InstallCRDs: true}
		m.Spec.CRDDeletionPolicy = meshv1.CRDDeletionPolicyDelete
	})
	live := &apiextensionsv1.CustomResourceDefinition{}
	exists(t, live, "", theirs.GetName())
	if live.Labels[render.LabelOwner] != "" || live.Annotations[gatewayapi.ChannelAnnotation] != gatewayapi.ChannelExperimental {
		t.Errorf("the user's experimental CRD was changed: labels %v annotations %v", live.Labels, live.Annotations)
	}
	if slices.Contains(mesh.Status.Inventory.Entries, "_"+theirs.GetName()+"_apiextensions.k8s.io_CustomResourceDefinition") {
		t.Error("the user's CRD is in the inventory, so deleting the mesh would delete it")
	}
	i = slices.IndexFunc(mesh.Status.Components, func(c meshv1.ComponentStatus) bool { return c.Name == render.ComponentGatewayAPI })
	if i < 0 || !strings.Contains(mesh.Status.Components[i].Message, "experimental channel") {
		t.Errorf("status does not say the experimental CRD is left alone: %+v", mesh.Status.Components)
	}
}

// Deletion removes webhooks first, then gateways, then the node agents' DaemonSets, then the rest.
func TestDeletionOrderIsWebhooksGatewaysDaemonSetsThenTheRest(t *testing.T) {
	ordered := orderForDeletion([]string{
		"istio-system_istiod_apps_Deployment",
		"kube-system_istio-cni-node_apps_DaemonSet",
		"istio-ingress_istio-ingressgateway_apps_Deployment",
		"istio-ingress_istio-ingressgateway__Service",
		"_istio-sidecar-injector_admissionregistration.k8s.io_MutatingWebhookConfiguration",
		"istio-system_ztunnel_apps_DaemonSet",
	}, []meshv1.Gateway{{Name: "istio-ingressgateway", Namespace: "istio-ingress"}})
	want := []string{
		"_istio-sidecar-injector_admissionregistration.k8s.io_MutatingWebhookConfiguration",
		"istio-ingress_istio-ingressgateway_apps_Deployment",
		"istio-ingress_istio-ingressgateway__Service",
		"kube-system_istio-cni-node_apps_DaemonSet",
		"istio-system_ztunnel_apps_DaemonSet",
		"istio-system_istiod_apps_Deployment",
	}
	if !slices.Equal(ordered, want) {
		t.Errorf("deletion order\n%v\nwant\n%v", ordered, want)
	}
}

// With autoscaling, the autoscaler owns the gateway's replicas: scaling it writes nothing and is never undone.
func TestAutoscaledGatewayScalingCausesNoWrite(t *testing.T) {
	ctx := context.Background()
	mesh := createMesh(t, "gateway-hpa", func(m *meshv1.ServiceMesh) {
		m.Spec.Gateways = []meshv1.Gateway{{Name: "ingress", Namespace: "gateway-hpa-system",
			Autoscaling: &meshv1.Autoscaling{MinReplicas: 1, MaxReplicas: 5}}}
	})
	markRolledOut(t, mesh.Spec.Namespace, "istiod")
	exists(t, &appsv1.Deployment{}, mesh.Spec.Namespace, "ingress")
	markRolledOut(t, mesh.Spec.Namespace, "ingress")
	waitForMesh(t, mesh, condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady))

	writesBefore := writes.Writes()
	reconcileAfter(t, func() {
		dep := &appsv1.Deployment{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: mesh.Spec.Namespace, Name: "ingress"}, dep); err != nil {
			t.Fatal(err)
		}
		dep.Spec.Replicas = ptr.To[int32](3) // as the HorizontalPodAutoscaler scales it
		if err := k8sClient.Update(ctx, dep); err != nil {
			t.Fatal(err)
		}
	})
	markRolledOut(t, mesh.Spec.Namespace, "ingress")
	reconcileAfter(t, func() { poke(t, mesh) })
	dep := &appsv1.Deployment{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: mesh.Spec.Namespace, Name: "ingress"}, dep); err != nil {
		t.Fatal(err)
	}
	if ptr.Deref(dep.Spec.Replicas, 0) != 3 {
		t.Errorf("the gateway's replicas are %d after the autoscaler set 3", ptr.Deref(dep.Spec.Replicas, 0))
	}
	// Nothing of the gateway is written (the mesh's status may change).
	n := int(writes.Writes() - writesBefore)
	log := writes.Log()
	for _, w := range log[max(0, len(log)-n):] {
		if strings.HasSuffix(w, "/ingress") {
			t.Errorf("scaling the autoscaled gateway caused the write %s", w)
		}
	}
}
