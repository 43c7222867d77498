package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/istio"
	"github.com/meshwright/meshwright/internal/testutil"
)

func revisionBasedAt(version string, grace int64, timeout time.Duration) func(*meshv1.ServiceMesh) {
	return func(m *meshv1.ServiceMesh) {
		m.Spec.Version = version
		m.Spec.UpdateStrategy = &meshv1.UpdateStrategy{Type: meshv1.UpdateStrategyRevisionBased,
			InactiveRevisionDeletionGracePeriodSeconds: ptr.To(grace),
			ReadinessTimeout: &metav1.Duration{Duration: timeout}}
		m.Spec.Injection = &meshv1.Injection{RevisionTags: []string{"prod"}}
	}
}

// tagRevision returns the revision a revision tag's webhook points at.
func tagRevision(t testing.TB, mesh *meshv1.ServiceMesh, tag string) string {
	t.Helper()
	mwc := &admissionv1.MutatingWebhookConfiguration{}
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Name: "istio-revision-tag-" + tag + "-" + mesh.Spec.Namespace}, mwc); err != nil {
		t.Fatalf("tag %s: %v", tag, err)
	}
	return mwc.Labels["istio.io/rev"]
}

func setVersion(t testing.TB, mesh *meshv1.ServiceMesh, version string) {
	t.Helper()
	patch := client.MergeFrom(mesh.DeepCopy())
	mesh.Spec.Version = version
	if err := k8sClient.Patch(context.Background(), mesh, patch); err != nil {
		t.Fatal(err)
	}
	waitForMesh(t, mesh, reconciled)
}

func injectedPod(t testing.TB, namespace, name, revision string) *corev1.Pod {
	t.Helper()
	// The pod carries the revision label as an injected pod would; sidecar.istio.io/inject=false keeps envtest's API
	// server from calling the (absent) istiod injection webhook.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name,
		Labels: map[string]string{"istio.io/rev": revision, "sidecar.istio.io/inject": "false"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1"}}}}
	if err := k8sClient.Create(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	return pod
}

func TestRevisionBasedUpgrade(t *testing.T) {
	ctx := context.Background()
	mesh := createMesh(t, "rev", revisionBasedAt("1.30", 2, time.Hour))
	old, next := "rev-1-30-4", "rev-1-31-0"

	t.Run("a revision is named after the mesh and version, and the tags point at it", func(t *testing.T) {
		markRolledOut(t, mesh.Spec.Namespace, "istiod-"+old)
		waitForMesh(t, mesh, condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady))
		if mesh.Status.ActiveRevision != old || len(mesh.Status.Revisions) != 1 || mesh.Status.Revisions[0].Name != old {
			t.Fatalf("active %q revisions %+v, want only %s", mesh.Status.ActiveRevision, mesh.Status.Revisions, old)
		}
		for _, tag := range []string{"default", "prod"} {
			if got := tagRevision(t, mesh, tag); got != old {
				t.Errorf("tag %s points at %q, want %s", tag, got, old)
			}
		}
	})

	t.Run("usage counts the revision's pods and the namespaces selecting it", func(t *testing.T) {
		app := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "rev-app", Labels: map[string]string{"istio-injection": "enabled"}}}
		tagged := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "rev-tagged", Labels: map[string]string{"istio.io/rev": "prod"}}}
		for _, ns := range []*corev1.Namespace{app, tagged} {
			if err := k8sClient.Create(ctx, ns); err != nil {
				t.Fatal(err)
			}
		}
		injectedPod(t, app.Name, "app-1", old)
		injectedPod(t, tagged.Name, "app-2", old)
		waitForMesh(t, mesh, func(m *meshv1.ServiceMesh) error {
			if rs := m.Status.Revisions; len(rs) != 1 || rs[0].InUsePods != 2 || rs[0].InUseNamespaces != 2 {
				return fmt.Errorf("revisions %+v, want 2 pods and 2 namespaces in use", rs)
			}
			return nil
		})
	})

	t.Run("the new revision runs beside the old one, and the tags move only once it is ready", func(t *testing.T) {
		setVersion(t, mesh, "1.31")
		waitForMesh(t, mesh, condition(meshv1.ConditionReconciling, metav1.ConditionTrue, meshv1.ReasonUpgrading))
		if err := testutil.WantKStatus(mesh, status.InProgressStatus); err != nil {
			t.Error(err)
		}
		if got := tagRevision(t, mesh, "default"); got != old {
			t.Errorf("tags moved to %q before the new revision was ready", got)
		}
		markRolledOut(t, mesh.Spec.Namespace, "istiod-"+next)
		waitForMesh(t, mesh, condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady))
		if mesh.Status.ActiveRevision != next {
			t.Errorf("active revision %q, want %s", mesh.Status.ActiveRevision, next)
		}
		for _, tag := range []string{"default", "prod"} {
			if got := tagRevision(t, mesh, tag); got != next {
				t.Errorf("tag %s points at %q after the upgrade, want %s", tag, got, next)
			}
		}
		if len(mesh.Status.Revisions) != 2 {
			t.Errorf("revisions %+v: the old revision must stay while its pods run", mesh.Status.Revisions)
		}
	})

	t.Run("the old revision is not pruned while in use, and is pruned after the grace period once unused", func(t *testing.T) {
		reconcileAfter(t, func() { poke(t, mesh) })
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: mesh.Spec.Namespace, Name: "istiod-" + old}, &appsv1.Deployment{}); err != nil {
			t.Fatalf("the old istiod was removed while pods still use it: %v", err)
		}
		for _, p := range []client.ObjectKey{{Namespace: "rev-app", Name: "app-1"}, {Namespace: "rev-tagged", Name: "app-2"}} {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name}}
			if err := k8sClient.Delete(ctx, pod, client.GracePeriodSeconds(0)); err != nil {
				t.Fatal(err)
			}
		}
		unusedAt := time.Now()
		var inactiveSeen time.Time
		waitForMesh(t, mesh, func(m *meshv1.ServiceMesh) error {
			for _, rs := range m.Status.Revisions {
				if rs.Name == old {
					if rs.InactiveSince != nil && inactiveSeen.IsZero() {
						inactiveSeen = time.Now()
					}
					return fmt.Errorf("revision %s still listed (inactive since %v)", old, rs.InactiveSince)
				}
			}
			return nil
		})
		testutil.Eventually(t, waitTimeout, func() error {
			err := k8sClient.Get(ctx, client.ObjectKey{Namespace: mesh.Spec.Namespace, Name: "istiod-" + old}, &appsv1.Deployment{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("old istiod still present: %v", err)
		})
		if elapsed := time.Since(unusedAt); elapsed < 2*time.Second {
			t.Errorf("the old revision was removed %s after its last pod left, before the 2s grace period", elapsed)
		}
		if inactiveSeen.IsZero() {
			t.Error("status never showed the old revision as inactive before removing it")
		}
		if got := tagRevision(t, mesh, "default"); got != next {
			t.Errorf("default tag points at %q after pruning, want %s", got, next)
		}
	})
}

func TestRevisionBasedUpgradeRollsBack(t *testing.T) {
	ctx := context.Background()
	mesh := createMesh(t, "rollback", revisionBasedAt("1.30", 1, 2*time.Second))
	old, next := "rollback-1-30-4", "rollback-1-31-0"
	markRolledOut(t, mesh.Spec.Namespace, "istiod-"+old)
	waitForMesh(t, mesh, condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady))
	oldIstiod := &appsv1.Deployment{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: mesh.Spec.Namespace, Name: "istiod-" + old}, oldIstiod); err != nil {
		t.Fatal(err)
	}

	t.Run("a new revision that never becomes ready fails the upgrade and leaves the tags on the old one", func(t *testing.T) {
		setVersion(t, mesh, "1.31")
		waitForMesh(t, mesh, condition(meshv1.ConditionStalled, metav1.ConditionTrue, meshv1.ReasonUpgradeFailed))
		if err := testutil.WantKStatus(mesh, status.FailedStatus); err != nil {
			t.Error(err)
		}
		if got := tagRevision(t, mesh, "default"); got != old {
			t.Errorf("tags point at %q, want the old %s", got, old)
		}
		if mesh.Status.ActiveRevision != old {
			t.Errorf("active revision %q, want %s", mesh.Status.ActiveRevision, old)
		}
	})

	t.Run("setting the version back returns to the old revision without recreating it", func(t *testing.T) {
		setVersion(t, mesh, "1.30")
		waitForMesh(t, mesh, condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady))
		if err := testutil.WantKStatus(mesh, status.CurrentStatus); err != nil {
			t.Error(err)
		}
		current := &appsv1.Deployment{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(oldIstiod), current); err != nil {
			t.Fatal(err)
		}
		if current.UID != oldIstiod.UID {
			t.Error("the old istiod was recreated")
		}
		testutil.Eventually(t, waitTimeout, func() error {
			err := k8sClient.Get(ctx, client.ObjectKey{Namespace: mesh.Spec.Namespace, Name: "istiod-" + next}, &appsv1.Deployment{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("the failed revision's istiod is still present: %v", err)
		})
	})
}

func TestWorkloadRolloutRestartsBoundedAndInOrder(t *testing.T) {
	ctx := context.Background()
	mesh := createMesh(t, "roll", func(m *meshv1.ServiceMesh) {
		revisionBasedAt("1.30", 1, time.Hour)(m)
		m.Spec.UpdateStrategy.WorkloadRollout = &meshv1.WorkloadRollout{Enabled: true, MaxConcurrent: ptr.To[int32](1)}
	})
	old, next := "roll-1-30-4", "roll-1-31-0"
	markRolledOut(t, mesh.Spec.Namespace, "istiod-"+old)
	waitForMesh(t, mesh, condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady))

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "roll-app", Labels: map[string]string{"istio-injection": "enabled"}}}
	if err := k8sClient.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	// Three injected Deployments and, playing the ReplicaSet controller and the injector (envtest runs neither), one
	// pod each labelled with the revision that injected it.
	names := []string{"app-a", "app-b", "app-c"}
	for _, name := range names {
		createRolledOutApp(t, ns.Name, name)
		pod := injectedPod(t, ns.Name, name+"-old", old)
		pod.Labels["app"] = name
		if err := k8sClient.Update(ctx, pod); err != nil {
			t.Fatal(err)
		}
	}

	setVersion(t, mesh, "1.31")
	markRolledOut(t, mesh.Spec.Namespace, "istiod-"+next)

	var order []string
	maxRestarting := 0
	testutil.Eventually(t, 2*waitTimeout, func() error {
		restarting := 0
		for _, name := range names {
			dep := &appsv1.Deployment{}
			if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: name}, dep); err != nil {
				return err
			}
			if dep.Spec.Template.Annotations[AnnotationRestartedFor] != next {
				continue
			}
			oldPod := &corev1.Pod{}
			err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: name + "-old"}, oldPod)
			if apierrors.IsNotFound(err) {
				continue // already moved
			}
			restarting++
			// Play the rollout: the new pod comes from the new revision, the old one goes.
			order = append(order, name)
			newPod := injectedPod(t, ns.Name, name+"-new", next)
			newPod.Labels["app"] = name
			if err := k8sClient.Update(ctx, newPod); err != nil {
				return err
			}
			if err := k8sClient.Delete(ctx, oldPod, client.GracePeriodSeconds(0)); err != nil {
				return err
			}
			markRolledOut(t, ns.Name, name)
		}
		maxRestarting = max(maxRestarting, restarting)
		if len(order) < len(names) {
			return fmt.Errorf("restarted so far: %v", order)
		}
		return nil
	})
	if maxRestarting > 1 {
		t.Errorf("%d workloads restarted at once, maxConcurrent is 1", maxRestarting)
	}
	if fmt.Sprint(order) != fmt.Sprint(names) {
		t.Errorf("restart order %v, want %v", order, names)
	}
	waitForMesh(t, mesh, func(m *meshv1.ServiceMesh) error {
		ro := m.Status.WorkloadRollout
		if ro == nil || ro.Revision != next || ro.Restarted != 3 || ro.Pending != 0 || len(ro.InProgress) != 0 {
			return fmt.Errorf("workloadRollout %+v, want 3 restarted onto %s and nothing pending", ro, next)
		}
		return condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady)(m)
	})
}

// A newer Meshwright may no longer embed the version an old revision runs. That revision must stay as it is, not
// re-rendered and not pruned, until nothing uses it; then it is retired like any other.
func TestRevisionOfAVersionNoLongerEmbeddedStaysUntilUnused(t *testing.T) {
	ctx := context.Background()
	mesh := createMesh(t, "legacy", revisionBasedAt("1.30", 1, time.Hour))
	old, next := "legacy-1-30-4", "legacy-1-31-0"
	markRolledOut(t, mesh.Spec.Namespace, "istiod-"+old)
	waitForMesh(t, mesh, condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "legacy-app"}}
	if err := k8sClient.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	pod := injectedPod(t, ns.Name, "app", old)
	setVersion(t, mesh, "1.31")
	markRolledOut(t, mesh.Spec.Namespace, "istiod-"+next)
	waitForMesh(t, mesh, condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady))

	// This build "no longer embeds" 1.30.
	onlyNewest, err := istio.LoadCatalog([]byte("hub: docker.io/istio\nimages: {pilot: pilot, proxy: proxyv2}\n" +
		"versions:\n- {version: 1.31.0, charts: istio-1.31, endOfLife: \"2027-09-30\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	embedded := reconciler.Catalog()
	reconciler.SetCatalog(onlyNewest)
	t.Cleanup(func() { reconciler.SetCatalog(embedded) })

	oldIstiod := &appsv1.Deployment{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: mesh.Spec.Namespace, Name: "istiod-" + old}, oldIstiod); err != nil {
		t.Fatal(err)
	}
	reconcileAfter(t, func() { poke(t, mesh) })
	reconcileAfter(t, func() { poke(t, mesh) })
	still := &appsv1.Deployment{}
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(oldIstiod), still); err != nil {
		t.Fatalf("the old revision's istiod was removed while in use: %v", err)
	}
	if still.ResourceVersion != oldIstiod.ResourceVersion {
		t.Error("the old revision's istiod was modified although its version is no longer embedded")
	}

	if err := k8sClient.Delete(ctx, pod, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, waitTimeout, func() error {
		err := k8sClient.Get(ctx, client.ObjectKeyFromObject(oldIstiod), &appsv1.Deployment{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("unused old revision not pruned yet: %v", err)
	})
	waitForMesh(t, mesh, func(m *meshv1.ServiceMesh) error {
		for _, e := range m.Status.Inventory.Entries {
			if strings.Contains(e, old) {
				return fmt.Errorf("inventory still lists %s", e)
			}
		}
		return nil
	})
}

// Injected pods coming and going, with nothing waiting on them, only change the usage counts in status: their events
// are coalesced into one reconcile per usageRefresh instead of one status write each.
func TestPodChurnIsCoalescedIntoOneStatusWrite(t *testing.T) {
	ctx := context.Background()
	mesh := installReady(t, "churn")
	rev := mesh.Status.Revisions[0].Name
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "churn-app"}}
	if err := k8sClient.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8sClient.Delete(ctx, ns) })
	// The namespace's own event enqueues every mesh of the suite at once; the mesh's reconcile for it must be behind
	// us, or it could run among the pod creations and write a partial count.
	reconcileAfter(t, func() { poke(t, mesh) })
	controllerIdle(t)

	before, started := writes.Writes(), time.Now()
	for i := range 20 {
		injectedPod(t, ns.Name, fmt.Sprintf("app-%d", i), rev)
	}
	// A write before usageRefresh would show as a count moving early, or as more than the one write below.
	waitForMesh(t, mesh, func(m *meshv1.ServiceMesh) error {
		if rs := m.Status.Revisions; len(rs) != 1 || rs[0].InUsePods != 20 {
			return fmt.Errorf("revisions %+v, want 20 pods in use", rs)
		}
		return nil
	})
	if took := time.Since(started); took < usageRefresh-time.Second {
		t.Errorf("the usage count moved after %s, before usageRefresh (%s)", took.Round(time.Millisecond), usageRefresh)
	}
	if got := writes.Writes() - before; got != 1 {
		t.Errorf("%d writes for 20 pod creations (started %s), want the one status write: %v", got, started.Format("15:04:05.000"), writes.Details(int(got)))
	}
}
