package controllers

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/yaml"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/apply"
	"github.com/meshwright/meshwright/internal/testutil"
)

const waitTimeout = 30 * time.Second

// crdDeletionTimeout bounds the wait for a deleted CRD to be gone. The API server removes a CRD only after it has
// deleted every object of its kind (the CRD's cleanup finalizer), which on two CPUs under -race has taken longer
// than waitTimeout.
const crdDeletionTimeout = 2 * time.Minute

// waitCRDsGone waits until none of the named CRDs exists any more. While one is still there, the error says what
// its cleanup finalizer reports (the Terminating condition: deleting instances, waiting for them, or failing).
//
// The API server's cleanup lists the kind's objects from its watch cache, which is built on first use: for a kind
// nobody listed yet, the attempt fails with "storage is (re)initializing" and is retried with the server's
// per-CRD backoff. In a long suite that backoff has left a CRD Terminating for minutes (the server logged no retry
// for four minutes after such a failure). A CRD whose cleanup failed is therefore nudged: an annotation changed,
// which queues it again at once, as any event on it would (at most once a second).
func waitCRDsGone(t testing.TB, names ...string) {
	t.Helper()
	ctx := context.Background()
	nudges, lastNudge := 0, time.Time{}
	testutil.Eventually(t, crdDeletionTimeout, func() error {
		for _, name := range names {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			switch err := k8sClient.Get(ctx, client.ObjectKey{Name: name}, crd); {
			case apierrors.IsNotFound(err):
				continue
			case err != nil:
				return err
			}
			state := "not being deleted"
			if crd.DeletionTimestamp != nil {
				state = fmt.Sprintf("deleted %s ago, finalizers %v", time.Since(crd.DeletionTimestamp.Time).Round(time.Second), crd.Finalizers)
			}
			for _, c := range crd.Status.Conditions {
				if c.Type != apiextensionsv1.Terminating {
					continue
				}
				state += fmt.Sprintf(", Terminating=%s %s: %s", c.Status, c.Reason, c.Message)
				if c.Reason == "InstanceDeletionFailed" && time.Since(lastNudge) > time.Second {
					patch := client.MergeFrom(crd.DeepCopy())
					metav1.SetMetaDataAnnotation(&crd.ObjectMeta, "test.meshwright.dev/nudge", time.Now().Format(time.RFC3339Nano))
					if err := k8sClient.Patch(ctx, crd, patch); err != nil && !apierrors.IsNotFound(err) {
						return fmt.Errorf("nudging CRD %s: %w", name, err)
					}
					nudges, lastNudge = nudges+1, time.Now()
				}
			}
			return fmt.Errorf("CRD %s still present (%s; %d nudges)", name, state, nudges)
		}
		return nil
	})
}

// createMesh creates a ServiceMesh in its own namespace (envtest has no namespace controller, so namespaces are
// never reused) and deletes it when the test ends, waiting until it is gone so the next test's mesh is the only one.
func createMesh(t testing.TB, name string, mutate ...func(*meshv1.ServiceMesh)) *meshv1.ServiceMesh {
	t.Helper()
	mesh := &meshv1.ServiceMesh{ObjectMeta: metav1.ObjectMeta{Name: name}}
	mesh.Spec.Namespace = name + "-system"
	for _, m := range mutate {
		m(mesh)
	}
	if err := k8sClient.Create(context.Background(), mesh); err != nil {
		t.Fatalf("creating ServiceMesh %s: %v", name, err)
	}
	t.Cleanup(func() { deleteMesh(t, mesh) })
	return mesh
}

// deleteMesh deletes the mesh and waits until it is gone, and so are the CRDs its deletion deleted
// (crdDeletionPolicy Delete): a later test must not find them still terminating.
func deleteMesh(t testing.TB, mesh *meshv1.ServiceMesh) {
	t.Helper()
	ctx := context.Background()
	var crds []string
	live := &meshv1.ServiceMesh{}
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(mesh), live); err == nil && live.Status.Inventory != nil {
		for _, entry := range live.Status.Inventory.Entries {
			if id, _ := apply.ParseID(entry); id.GroupKind.Kind == "CustomResourceDefinition" {
				crds = append(crds, id.Name)
			}
		}
	}
	if err := k8sClient.Delete(ctx, mesh); err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("deleting ServiceMesh %s: %v", mesh.Name, err)
	}
	testutil.Eventually(t, waitTimeout, func() error {
		err := k8sClient.Get(ctx, client.ObjectKeyFromObject(mesh), &meshv1.ServiceMesh{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("ServiceMesh %s still present (err %v)", mesh.Name, err)
	})
	var deleted []string
	for _, name := range crds {
		crd := &metav1.PartialObjectMetadata{}
		crd.SetGroupVersionKind(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))
		if err := k8sClient.Get(ctx, client.ObjectKey{Name: name}, crd); err == nil && crd.DeletionTimestamp != nil {
			deleted = append(deleted, name)
		}
	}
	waitCRDsGone(t, deleted...)
}

// waitForMesh polls the mesh until cond accepts it; mesh is updated in place.
func waitForMesh(t testing.TB, mesh *meshv1.ServiceMesh, cond func(*meshv1.ServiceMesh) error) {
	t.Helper()
	testutil.Eventually(t, waitTimeout, func() error {
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(mesh), mesh); err != nil {
			return err
		}
		return cond(mesh)
	})
}

// reconciled accepts a mesh whose status reflects its current generation.
func reconciled(m *meshv1.ServiceMesh) error {
	if m.Status.ObservedGeneration != m.Generation {
		return fmt.Errorf("observedGeneration %d, generation %d", m.Status.ObservedGeneration, m.Generation)
	}
	return nil
}

// condition accepts a mesh whose condition t has status s and reason reason ("" for any).
func condition(condType string, s metav1.ConditionStatus, reason string) func(*meshv1.ServiceMesh) error {
	return func(m *meshv1.ServiceMesh) error {
		if err := reconciled(m); err != nil {
			return err
		}
		c := meta.FindStatusCondition(m.Status.Conditions, condType)
		if c == nil || c.Status != s || (reason != "" && c.Reason != reason) {
			return fmt.Errorf("%s is %+v, want %s/%s", condType, c, s, reason)
		}
		return nil
	}
}

// markRolledOut plays the Deployment controller, which envtest does not run: it reports the Deployment's current
// generation as fully rolled out and available.
func markRolledOut(t testing.TB, namespace, name string) {
	t.Helper()
	ctx := context.Background()
	testutil.Eventually(t, waitTimeout, func() error {
		dep := &appsv1.Deployment{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, dep); err != nil {
			return err
		}
		replicas := int32(1)
		if dep.Spec.Replicas != nil {
			replicas = *dep.Spec.Replicas
		}
		dep.Status = appsv1.DeploymentStatus{
			ObservedGeneration: dep.Generation, Replicas: replicas, UpdatedReplicas: replicas,
			ReadyReplicas: replicas, AvailableReplicas: replicas,
			Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue,
				Reason: "MinimumReplicasAvailable", LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
		}
		return k8sClient.Status().Update(ctx, dep)
	})
}

// installReady creates a mesh and brings it to Ready, playing the Deployment controller for istiod.
func installReady(t testing.TB, name string, mutate ...func(*meshv1.ServiceMesh)) *meshv1.ServiceMesh {
	t.Helper()
	mesh := createMesh(t, name, mutate...)
	waitForMesh(t, mesh, func(m *meshv1.ServiceMesh) error {
		if m.Status.Inventory == nil || len(m.Status.Inventory.Entries) == 0 {
			return fmt.Errorf("no inventory yet")
		}
		return nil
	})
	markRolledOut(t, mesh.Spec.Namespace, "istiod")
	waitForMesh(t, mesh, condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady))
	return mesh
}

// reconcileTotal reads controller-runtime's reconcile counter of the ServiceMesh controller.
func reconcileTotal(t testing.TB) float64 {
	t.Helper()
	total, err := testutil.MetricSum(ctrlmetrics.Registry, "controller_runtime_reconcile_total", map[string]string{"controller": "servicemesh"})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// reconcileAfter runs trigger and waits until the controller finished at least one more reconcile.
func reconcileAfter(t testing.TB, trigger func()) {
	t.Helper()
	before := reconcileTotal(t)
	trigger()
	testutil.Eventually(t, waitTimeout, func() error {
		if reconcileTotal(t) <= before {
			return fmt.Errorf("no reconcile yet")
		}
		return nil
	})
}

// controllerIdle waits until the ServiceMesh controller has had nothing queued and nothing running for 250 ms: every
// request that events before the call enqueued has then been reconciled. (A request waiting out a delay, such as
// usageRefresh, is not queued yet.) reconcileAfter alone does not tell that: an event that enqueues every mesh counts
// as reconciled with the first of them.
func controllerIdle(t testing.TB) {
	t.Helper()
	busy := func() float64 {
		queued, err := testutil.MetricSum(ctrlmetrics.Registry, "workqueue_depth", map[string]string{"name": "servicemesh"})
		if err != nil {
			t.Fatal(err)
		}
		running, err := testutil.MetricSum(ctrlmetrics.Registry, "controller_runtime_active_workers", map[string]string{"controller": "servicemesh"})
		if err != nil {
			t.Fatal(err)
		}
		return queued + running
	}
	idleSince := time.Time{}
	testutil.Eventually(t, waitTimeout, func() error {
		switch {
		case busy() > 0:
			idleSince = time.Time{}
			return fmt.Errorf("the ServiceMesh controller has work queued or running")
		case idleSince.IsZero():
			idleSince = time.Now()
			return fmt.Errorf("idle only just now")
		case time.Since(idleSince) < 250*time.Millisecond:
			return fmt.Errorf("idle for %s only", time.Since(idleSince))
		}
		return nil
	})
}

// poke changes an annotation on the mesh, which causes a reconcile without a spec change.
func poke(t testing.TB, mesh *meshv1.ServiceMesh) {
	t.Helper()
	patch := client.MergeFrom(mesh.DeepCopy())
	if mesh.Annotations == nil {
		mesh.Annotations = map[string]string{}
	}
	mesh.Annotations["test.meshwright.dev/poke"] = time.Now().Format(time.RFC3339Nano)
	if err := k8sClient.Patch(context.Background(), mesh, patch); err != nil {
		t.Fatal(err)
	}
}

// updateMesh patches the mesh spec, waits until the controller reconciled the new generation, plays the Deployment
// controller for istiod, and waits for Ready.
func updateMesh(t testing.TB, mesh *meshv1.ServiceMesh, mutate func(*meshv1.ServiceMesh)) {
	t.Helper()
	patch := client.MergeFrom(mesh.DeepCopy())
	mutate(mesh)
	if err := k8sClient.Patch(context.Background(), mesh, patch); err != nil {
		t.Fatal(err)
	}
	waitForMesh(t, mesh, reconciled)
	markRolledOut(t, mesh.Spec.Namespace, "istiod")
	waitForMesh(t, mesh, condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady))
}

// readManifest reads a one-object YAML manifest (a sample, a captured object) as the API server would receive it.
func readManifest(t testing.TB, path string) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data, err = yaml.YAMLToJSON(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return u
}

// liveMesh reads the ServiceMesh as the API server stores it: no typed defaults (a typed ServiceMesh always
// serialises status.observedGeneration, even when the server has no status at all).
func liveMesh(t testing.TB, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(meshv1.GroupVersion.WithKind("ServiceMesh"))
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Name: name}, u); err != nil {
		t.Fatal(err)
	}
	return u
}

// waitForLiveMesh polls the stored ServiceMesh until cond accepts its typed form, and returns the stored object.
func waitForLiveMesh(t testing.TB, name string, cond func(*meshv1.ServiceMesh) error) *unstructured.Unstructured {
	t.Helper()
	var live *unstructured.Unstructured
	testutil.Eventually(t, waitTimeout, func() error {
		live = liveMesh(t, name)
		typed := &meshv1.ServiceMesh{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(live.Object, typed); err != nil {
			return err
		}
		return cond(typed)
	})
	return live
}

// createRolledOutApp creates an injected app Deployment (its pods opt out of the real webhooks) and marks it rolled
// out, as the Deployment controller would; envtest runs no controllers.
func createRolledOutApp(t *testing.T, namespace, name string) {
	t.Helper()
	labels := map[string]string{"app": name, "sidecar.istio.io/inject": "false"}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1"}}}}}}
	if err := k8sClient.Create(context.Background(), dep); err != nil {
		t.Fatal(err)
	}
	markRolledOut(t, namespace, name)
}
