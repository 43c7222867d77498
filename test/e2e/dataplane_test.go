//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/testutil"
	"github.com/meshwright/meshwright/test/fakeistiod"
)

// playIstiod runs the stand-in for istiod's injector (and its GatewayClass controller) for the rest of the test:
// gateways are injected pods, which the injection webhook must admit.
func playIstiod(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stop, err := fakeistiod.Start(ctx, adminCfg, fakeistiod.Options{EgressSocket: egressSocket})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); stop() })
}

// gatewayServes checks that a gateway's Deployment is available with want replicas, and that its Service's
// EndpointSlices list exactly its ready pods on the Service's port names (the local cluster has no DNS to try).
func gatewayServes(ctx context.Context, namespace, name string, want int32) error {
	dep := &appsv1.Deployment{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, dep); err != nil {
		return err
	}
	if !available(dep) || dep.Status.AvailableReplicas != want {
		return fmt.Errorf("gateway %s/%s: %d of %d replicas available", namespace, name, dep.Status.AvailableReplicas, want)
	}
	return endpointSlicesListReadyPods(ctx, namespace, name, want)
}

// endpointSlicesListReadyPods checks that a Service's EndpointSlices list exactly its want ready pods, on every port
// name the Service declares.
func endpointSlicesListReadyPods(ctx context.Context, namespace, name string, want int32) error {
	svc := &corev1.Service{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, svc); err != nil {
		return err
	}
	pods := &corev1.PodList{}
	if err := k8sClient.List(ctx, pods, client.InNamespace(namespace), client.MatchingLabels(svc.Spec.Selector)); err != nil {
		return err
	}
	var podIPs []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.PodIP != "" {
			podIPs = append(podIPs, p.Status.PodIP)
		}
	}
	slices.Sort(podIPs)
	slicesList := &discoveryv1.EndpointSliceList{}
	if err := k8sClient.List(ctx, slicesList, client.InNamespace(namespace), client.MatchingLabels{discoveryv1.LabelServiceName: name}); err != nil {
		return err
	}
	var ready []string
	ports := map[string]bool{}
	for _, s := range slicesList.Items {
		for _, p := range s.Ports {
			ports[ptr.Deref(p.Name, "")] = true
		}
		for _, e := range s.Endpoints {
			if ptr.Deref(e.Conditions.Ready, false) {
				ready = append(ready, e.Addresses...)
			}
		}
	}
	slices.Sort(ready)
	if len(ready) != int(want) || !slices.Equal(ready, podIPs) {
		return fmt.Errorf("Service %s/%s: EndpointSlices list ready %v, pods %v", namespace, name, ready, podIPs)
	}
	for _, p := range svc.Spec.Ports {
		if !ports[p.Name] {
			return fmt.Errorf("Service %s/%s: EndpointSlices lack port %s", namespace, name, p.Name)
		}
	}
	return nil
}

// A mesh with an ingress and an egress gateway becomes Ready once both serve, without a load balancer.
func TestGatewaysBecomeReady(t *testing.T) {
	ctx := context.Background()
	playIstiod(t)
	start := time.Now()
	mesh := &meshv1.ServiceMesh{ObjectMeta: metav1.ObjectMeta{Name: "gateways"}, Spec: meshv1.ServiceMeshSpec{
		Gateways: []meshv1.Gateway{
			{Name: "istio-ingressgateway", Namespace: "istio-ingress", Replicas: ptr.To[int32](2)},
			{Name: "istio-egressgateway", Namespace: "istio-system", Type: meshv1.GatewayEgress},
		}}}
	if err := k8sClient.Create(ctx, mesh); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteAndWait(t, mesh) })
	waitCurrent(t, mesh)
	t.Logf("mesh with an ingress and an egress gateway Current after %s", time.Since(start).Round(time.Millisecond))
	testutil.Eventually(t, readyTimeout, func() error {
		if err := gatewayServes(ctx, "istio-ingress", "istio-ingressgateway", 2); err != nil {
			return err
		}
		return gatewayServes(ctx, "istio-system", "istio-egressgateway", 1)
	})
	if c := meta.FindStatusCondition(mesh.Status.Conditions, meshv1.ConditionGatewaysReady); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("GatewaysReady = %+v", c)
	}
	for _, g := range mesh.Status.Gateways {
		t.Logf("gateway %s/%s: %d ready, address %s, revision %s", g.Namespace, g.Name, g.ReadyReplicas, g.Address, g.Revision)
		if g.Address == "" {
			t.Errorf("gateway %s/%s reports no address", g.Namespace, g.Name)
		}
	}
	svc := &corev1.Service{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "istio-egressgateway"}, svc); err != nil || svc.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("egress Service type %s (err %v), want ClusterIP", svc.Spec.Type, err)
	}
}

// An ambient mesh becomes Ready with the CNI agent and ztunnel rolled out on every simulated node, and accepts a
// waypoint once the Gateway API CRDs it installs exist.
func TestAmbientMeshBecomesReady(t *testing.T) {
	ctx := context.Background()
	playIstiod(t)
	start := time.Now()
	mesh := &meshv1.ServiceMesh{ObjectMeta: metav1.ObjectMeta{Name: "ambient"}, Spec: meshv1.ServiceMeshSpec{
		Profile: meshv1.ProfileAmbient, GatewayAPI: &meshv1.GatewayAPI{InstallCRDs: true},
		CRDDeletionPolicy: meshv1.CRDDeletionPolicyDelete,
	}}
	if err := k8sClient.Create(ctx, mesh); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteAndWait(t, mesh) })
	waitCurrent(t, mesh)
	t.Logf("ambient mesh Current after %s", time.Since(start).Round(time.Millisecond))
	nodes := &corev1.NodeList{}
	if err := k8sClient.List(ctx, nodes); err != nil {
		t.Fatal(err)
	}
	for _, key := range []client.ObjectKey{{Namespace: "kube-system", Name: "istio-cni-node"}, {Namespace: "istio-system", Name: "ztunnel"}} {
		ds := &appsv1.DaemonSet{}
		if err := k8sClient.Get(ctx, key, ds); err != nil {
			t.Fatal(err)
		}
		if int(ds.Status.NumberReady) != len(nodes.Items) || ds.Status.UpdatedNumberScheduled != ds.Status.DesiredNumberScheduled {
			t.Errorf("DaemonSet %s: %d ready, %d updated of %d desired on %d nodes", key, ds.Status.NumberReady,
				ds.Status.UpdatedNumberScheduled, ds.Status.DesiredNumberScheduled, len(nodes.Items))
		}
	}
	waypoint := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
		"metadata": map[string]any{"name": "waypoint", "namespace": "default"},
		"spec": map[string]any{"gatewayClassName": "istio-waypoint", "listeners": []any{
			map[string]any{"name": "mesh", "port": int64(15008), "protocol": "HBONE"}}},
	}}
	if err := k8sClient.Create(ctx, waypoint); err != nil {
		t.Fatalf("the API server refused a waypoint Gateway: %v", err)
	}
	t.Cleanup(func() { _ = k8sClient.Delete(ctx, waypoint) })
	testutil.Eventually(t, readyTimeout, func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(mesh), mesh); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(mesh.Status.Conditions, meshv1.ConditionWaypointsAvailable); c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("WaypointsAvailable = %+v", c)
		}
		for _, c := range mesh.Status.Components {
			if c.Name == "gateway-api" && c.State == meshv1.ComponentReady && strings.Contains(c.Message, "GatewayClass istio Accepted=True") {
				return nil
			}
		}
		return fmt.Errorf("components %+v do not report GatewayClass istio accepted", mesh.Status.Components)
	})
}

// revisionWatch records, every 50 ms, when the default tag, the gateway's pod template and ztunnel's image first
// show the new revision, and the gateway's fewest available replicas.
type revisionWatch struct {
	mu                         sync.Mutex
	tagMoved, gwMoved, ztMoved time.Time
	minAvailable               int32
	readings                   int
	stop                       func()
}

func watchRevisionMove(t *testing.T, newRevision, newVersion string, gateway client.ObjectKey) *revisionWatch {
	w := &revisionWatch{minAvailable: 1 << 30}
	w.stop = every(50*time.Millisecond, func(ctx context.Context) {
		now := time.Now()
		tag := &admissionv1.MutatingWebhookConfiguration{}
		dep := &appsv1.Deployment{}
		zt := &appsv1.DaemonSet{}
		if k8sClient.Get(ctx, client.ObjectKey{Name: "istio-revision-tag-default"}, tag) != nil ||
			k8sClient.Get(ctx, gateway, dep) != nil ||
			k8sClient.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "ztunnel"}, zt) != nil {
			return
		}
		w.mu.Lock()
		w.readings++
		w.minAvailable = min(w.minAvailable, dep.Status.AvailableReplicas)
		if w.tagMoved.IsZero() && tag.Labels["istio.io/rev"] == newRevision {
			w.tagMoved = now
		}
		if w.gwMoved.IsZero() && dep.Spec.Template.Labels["istio.io/rev"] == newRevision {
			w.gwMoved = now
		}
		if w.ztMoved.IsZero() && strings.Contains(zt.Spec.Template.Spec.Containers[0].Image, ":"+newVersion) {
			w.ztMoved = now
		}
		w.mu.Unlock()
	})
	t.Cleanup(w.stop)
	return w
}

// A RevisionBased upgrade of an ambient mesh with a gateway moves the gateway and ztunnel to the new revision only
// after the revision tags moved, and the gateway never loses an available replica on the way.
func TestRevisionBasedUpgradeMovesGatewaysAndZtunnelAfterTheTags(t *testing.T) {
	ctx := context.Background()
	playIstiod(t)
	mesh := &meshv1.ServiceMesh{ObjectMeta: metav1.ObjectMeta{Name: "dp"}, Spec: meshv1.ServiceMeshSpec{
		Version: "1.30", Profile: meshv1.ProfileAmbient,
		UpdateStrategy: &meshv1.UpdateStrategy{Type: meshv1.UpdateStrategyRevisionBased,
			InactiveRevisionDeletionGracePeriodSeconds: ptr.To[int64](3)},
		Gateways: []meshv1.Gateway{{Name: "istio-ingressgateway", Namespace: "istio-ingress", Replicas: ptr.To[int32](2)}},
	}}
	if err := k8sClient.Create(ctx, mesh); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteAndWait(t, mesh) })
	waitCurrent(t, mesh)
	gw := client.ObjectKey{Namespace: "istio-ingress", Name: "istio-ingressgateway"}
	testutil.Eventually(t, readyTimeout, func() error { return gatewayServes(ctx, gw.Namespace, gw.Name, 2) })

	const next = "dp-1-31-0"
	w := watchRevisionMove(t, next, "1.31.0", gw)
	start := time.Now()
	patchVersion(t, mesh, "1.31")
	testutil.Eventually(t, 2*readyTimeout, func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(mesh), mesh); err != nil {
			return err
		}
		if err := testutil.WantKStatus(mesh, "Current"); err != nil {
			return err
		}
		if mesh.Status.ActiveRevision != next {
			return fmt.Errorf("active revision %s", mesh.Status.ActiveRevision)
		}
		return gatewayServes(ctx, gw.Namespace, gw.Name, 2)
	})
	w.stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("RevisionBased upgrade of an ambient mesh with a gateway: Current after %s; tags moved at +%s, gateway at +%s, ztunnel at +%s; "+
		"gateway available replicas never below %d (%d readings)", time.Since(start).Round(time.Millisecond),
		w.tagMoved.Sub(start).Round(time.Millisecond), w.gwMoved.Sub(start).Round(time.Millisecond),
		w.ztMoved.Sub(start).Round(time.Millisecond), w.minAvailable, w.readings)
	switch {
	case w.tagMoved.IsZero() || w.gwMoved.IsZero() || w.ztMoved.IsZero():
		t.Fatalf("not every move was observed: tags %v, gateway %v, ztunnel %v", w.tagMoved, w.gwMoved, w.ztMoved)
	case w.gwMoved.Before(w.tagMoved):
		t.Errorf("the gateway moved to %s before the revision tags did", next)
	case w.ztMoved.Before(w.tagMoved):
		t.Errorf("ztunnel moved to %s before the revision tags did", next)
	}
	if w.minAvailable < 2 {
		t.Errorf("the gateway's available replicas dropped to %d during the move; want never below 2", w.minAvailable)
	}
}
