package controllers

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/yaml"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/apply"
	"github.com/meshwright/meshwright/internal/render"
	"github.com/meshwright/meshwright/internal/testutil"
)

// rebuildDeadline is how soon a wiped status must be back: well before the 30 s rollout recheck, so only a reconcile
// caused by the wipe itself can meet it.
const rebuildDeadline = 10 * time.Second

// TestWipedStatusIsRebuiltFromTheLiveObjects wipes the status of a RevisionBased mesh, as `kubectl edit --subresource
// status`, a restore from backup or a buggy tool might: mid-upgrade with the new istiod not available, after the
// upgrade with the old revision still in use, and while an unused revision waits out its grace period.
func TestWipedStatusIsRebuiltFromTheLiveObjects(t *testing.T) {
	ctx := context.Background()
	const grace = 3 * time.Second
	mesh := createMesh(t, "wipe", revisionBasedAt("1.30", int64(grace/time.Second), time.Hour))
	old, next := "wipe-1-30-4", "wipe-1-31-0"
	markRolledOut(t, mesh.Spec.Namespace, "istiod-"+old)
	waitForMesh(t, mesh, condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady))
	app := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "wipe-app"}}
	if err := k8sClient.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	pod := injectedPod(t, app.Name, "app", old) // keeps the old revision in use after the upgrade

	t.Run("mid-upgrade, with the new istiod not available, nothing moves and status comes back", func(t *testing.T) {
		setVersion(t, mesh, "1.31")
		waitForMesh(t, mesh, func(m *meshv1.ServiceMesh) error {
			if len(m.Status.Revisions) != 2 {
				return fmt.Errorf("revisions %+v, want the old and the new one", m.Status.Revisions)
			}
			return condition(meshv1.ConditionReconciling, metav1.ConditionTrue, meshv1.ReasonUpgrading)(m)
		})
		wipeStatusAndExpectItBack(t, mesh)
		for _, tag := range []string{"default", "prod"} {
			if got := tagRevision(t, mesh, tag); got != old {
				t.Errorf("tag %s points at %q, want %s: the new revision is not available", tag, got, old)
			}
		}
	})

	t.Run("after the upgrade, the old revision still in use is remembered and kept", func(t *testing.T) {
		markRolledOut(t, mesh.Spec.Namespace, "istiod-"+next)
		waitForMesh(t, mesh, func(m *meshv1.ServiceMesh) error {
			if m.Status.ActiveRevision != next || len(m.Status.Revisions) != 2 {
				return fmt.Errorf("active %q revisions %+v, want %s active beside the old one", m.Status.ActiveRevision, m.Status.Revisions, next)
			}
			return condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady)(m)
		})
		wipeStatusAndExpectItBack(t, mesh)
		for _, tag := range []string{"default", "prod"} {
			if got := tagRevision(t, mesh, tag); got != next {
				t.Errorf("tag %s points at %q, want %s", tag, got, next)
			}
		}
	})

	t.Run("an unused revision's grace period starts again after a wipe, never shorter", func(t *testing.T) {
		if err := k8sClient.Delete(ctx, pod, client.GracePeriodSeconds(0)); err != nil {
			t.Fatal(err)
		}
		var inactiveSince time.Time
		waitForMesh(t, mesh, func(m *meshv1.ServiceMesh) error {
			for _, rs := range m.Status.Revisions {
				if rs.Name == old && rs.InactiveSince != nil {
					inactiveSince = rs.InactiveSince.Time
					return nil
				}
			}
			return fmt.Errorf("revision %s not inactive yet: %+v", old, m.Status.Revisions)
		})
		// Half the grace period has run on the operator's clock before the wipe: a wipe that kept counting from the
		// first inactivity would remove the revision within the other half.
		testutil.Eventually(t, grace, func() error {
			if ran := clock.Now().Sub(inactiveSince); ran < grace/2 {
				return fmt.Errorf("%s of the grace period ran, waiting for %s", ran, grace/2)
			}
			return nil
		})
		wipedAt := time.Now()
		wipeStatus(t, mesh)
		testutil.Eventually(t, waitTimeout, func() error {
			err := k8sClient.Get(ctx, client.ObjectKey{Namespace: mesh.Spec.Namespace, Name: "istiod-" + old}, &appsv1.Deployment{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("the unused revision's istiod is still present (%v)", err)
		})
		if elapsed := time.Since(wipedAt); elapsed < grace {
			t.Errorf("the unused revision was removed %s after the wipe, before a full %s grace period", elapsed, grace)
		}
		waitForMesh(t, mesh, func(m *meshv1.ServiceMesh) error {
			if len(m.Status.Revisions) != 1 || m.Status.Revisions[0].Name != next {
				return fmt.Errorf("revisions %+v, want only %s", m.Status.Revisions, next)
			}
			for _, e := range m.Status.Inventory.Entries {
				if id, _ := apply.ParseID(e); id.Name == "istiod-"+old {
					return fmt.Errorf("inventory still lists %s", e)
				}
			}
			return nil
		})
		if objs := liveObjectsOf(t, mesh); slices.ContainsFunc(objs, func(o liveObject) bool { return o.revision == old }) {
			t.Errorf("objects of the removed revision %s are left: %v", old, objs)
		}
	})
}

func TestWipedStatusOfAnInPlaceMeshIsRebuilt(t *testing.T) {
	mesh := installReady(t, "wipe-inplace")
	wipeStatusAndExpectItBack(t, mesh)
	testutil.Eventually(t, waitTimeout, func() error { return meshEvent(mesh, "StatusRebuilt") })

	// The status writes of the rebuild itself must not wake the controller again and again. Two barriers (an
	// annotation change each causes exactly one reconcile) bracket a window: between the first barrier's reconcile
	// and the second's, a settled mesh is reconciled once, for the second barrier, and never for its own writes.
	barrier := func(i int) float64 {
		t.Helper()
		before := reconcileTotal(t)
		patch := client.MergeFrom(mesh.DeepCopy())
		if mesh.Annotations == nil {
			mesh.Annotations = map[string]string{}
		}
		mesh.Annotations["test.meshwright.dev/barrier"] = fmt.Sprint(i)
		if err := k8sClient.Patch(context.Background(), mesh, patch); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, waitTimeout, func() error {
			if reconcileTotal(t) <= before {
				return fmt.Errorf("barrier %d not reconciled yet", i)
			}
			return nil
		})
		return reconcileTotal(t)
	}
	first := barrier(1)
	if got := barrier(2) - first; got != 1 {
		t.Errorf("%v reconciles of a settled mesh between two single-reconcile barriers after a rebuild, want 1", got)
	}
}

func TestOnlyAStatusThatLostStateCausesAReconcile(t *testing.T) {
	full := meshv1.ServiceMeshStatus{Version: "1.31.0", ActiveRevision: "m-1-31-0",
		Revisions: []meshv1.RevisionStatus{{Name: "m-1-30-4"}, {Name: "m-1-31-0"}},
		Inventory: &meshv1.Inventory{Entries: []string{"ns_istiod_apps_Deployment"}}}
	retired := *full.DeepCopy()
	retired.Revisions = retired.Revisions[1:]
	conditionsOnly := *full.DeepCopy()
	conditionsOnly.Conditions = []metav1.Condition{{Type: meshv1.ConditionReady, Status: metav1.ConditionTrue}}
	for _, tc := range []struct {
		name     string
		old, new meshv1.ServiceMeshStatus
		want     bool
	}{
		{"a wiped status causes one", full, meshv1.ServiceMeshStatus{}, true},
		{"emptied revisions cause one", full, func() meshv1.ServiceMeshStatus { s := *full.DeepCopy(); s.Revisions = nil; return s }(), true},
		{"an emptied inventory causes one", full, func() meshv1.ServiceMeshStatus { s := *full.DeepCopy(); s.Inventory = nil; return s }(), true},
		{"the operator's first status write causes none", meshv1.ServiceMeshStatus{}, full, false},
		{"the operator retiring a revision causes none", full, retired, false},
		{"a condition change causes none", full, conditionsOnly, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := event.UpdateEvent{ObjectOld: &meshv1.ServiceMesh{Status: tc.old}, ObjectNew: &meshv1.ServiceMesh{Status: tc.new}}
			if got := (statusStateLost{}).Update(e); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTheRunningVersionIsReadFromTheLiveIstiod(t *testing.T) {
	deployment := func(revision, image string) *appsv1.Deployment {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{render.LabelRevision: revision}}}
		d.Spec.Template.Spec.Containers = []corev1.Container{{Name: "discovery", Image: image}}
		return d
	}
	for _, tc := range []struct {
		name string
		dep  *appsv1.Deployment
		want string
	}{
		{"the catalog's image tag", deployment("default", "docker.io/istio/pilot:1.30.4"), "1.30.4"},
		{"a tag with a variant", deployment("default", "registry.local:5000/istio/pilot:1.31.0-distroless"), "1.31.0"},
		{"a tag with a digest", deployment("default", "docker.io/istio/pilot:1.31.0@sha256:0123"), "1.31.0"},
		{"a revision's name when the image says nothing", deployment("m-1-30-4", "example.com/not-istiod:1"), "1.30.4"},
		{"nothing when neither tells", deployment("default", "example.com/not-istiod:1"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := istiodVersion(tc.dep, "m"); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// wipeStatusAndExpectItBack wipes the status of a settled mesh and checks that it comes back within rebuildDeadline
// equal to what it was (timestamps and usage counters aside), that no labelled object was created, changed or deleted
// meanwhile, and that the inventory lists every one of them again.
func wipeStatusAndExpectItBack(t *testing.T, mesh *meshv1.ServiceMesh) {
	t.Helper()
	reconcileAfter(t, func() { poke(t, mesh) })
	if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(mesh), mesh); err != nil {
		t.Fatal(err)
	}
	want := comparableStatus(t, mesh.Status)
	objects := liveObjectsOf(t, mesh)

	wipeStatus(t, mesh)
	var got string
	testutil.Eventually(t, rebuildDeadline, func() error {
		m := &meshv1.ServiceMesh{}
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(mesh), m); err != nil {
			return err
		}
		if got = comparableStatus(t, m.Status); got != want {
			return fmt.Errorf("status not rebuilt yet:\n%s\nwant:\n%s", got, want)
		}
		return nil
	})
	reconcileAfter(t, func() { poke(t, mesh) })

	after := liveObjectsOf(t, mesh)
	if !slices.Equal(after, objects) {
		t.Errorf("labelled objects changed after the wipe (created, updated or deleted):\nbefore %v\nafter  %v", objects, after)
	}
	if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(mesh), mesh); err != nil {
		t.Fatal(err)
	}
	for _, o := range after {
		if !slices.Contains(mesh.Status.Inventory.Entries, o.id) {
			t.Errorf("%s is live and labelled as the mesh's, but missing from the inventory: nothing would ever prune it", o.id)
		}
	}
}

// wipeStatus empties the ServiceMesh's status through the status subresource.
func wipeStatus(t *testing.T, mesh *meshv1.ServiceMesh) {
	t.Helper()
	m := &meshv1.ServiceMesh{ObjectMeta: metav1.ObjectMeta{Name: mesh.Name}}
	wipe := []byte(`{"status":{"conditions":null,"version":null,"activeRevision":null,"revisions":null,"components":null,"inventory":null,"workloadRollout":null,"observedGeneration":0}}`)
	if err := k8sClient.Status().Patch(context.Background(), m, client.RawPatch(types.MergePatchType, wipe)); err != nil {
		t.Fatal(err)
	}
	if m.Status.Inventory != nil || len(m.Status.Revisions) > 0 || m.Status.ActiveRevision != "" {
		t.Fatalf("the wipe left status %+v", m.Status)
	}
}

// comparableStatus is status without what may differ after a rebuild: timestamps (a revision's grace period and
// readiness timeout restart) and usage counters.
func comparableStatus(t *testing.T, st meshv1.ServiceMeshStatus) string {
	t.Helper()
	st = *st.DeepCopy()
	for i := range st.Conditions {
		st.Conditions[i].LastTransitionTime = metav1.Time{}
	}
	for i := range st.Revisions {
		st.Revisions[i].CreatedAt, st.Revisions[i].InactiveSince = nil, nil
		st.Revisions[i].InUsePods, st.Revisions[i].InUseNamespaces = 0, 0
	}
	if st.WorkloadRollout != nil {
		st.WorkloadRollout.Restarted = 0
	}
	out, err := yaml.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// liveObject is a labelled object as the API server has it.
type liveObject struct {
	id, uid, resourceVersion, revision string
}

func (o liveObject) String() string { return o.id + "@" + o.resourceVersion }

// liveObjectsOf lists, from the API server, every object of a rendered kind labelled as the mesh's, sorted by ID.
func liveObjectsOf(t *testing.T, mesh *meshv1.ServiceMesh) []liveObject {
	t.Helper()
	var out []liveObject
	for _, gvk := range slices.Concat(WatchedKinds, CRDBackedKinds) {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		err := k8sClient.List(context.Background(), list, client.MatchingLabels{render.LabelOwner: mesh.Name})
		if meta.IsNoMatchError(err) {
			continue
		}
		if err != nil {
			t.Fatalf("listing %s: %v", gvk.Kind, err)
		}
		for _, item := range list.Items {
			id := apply.ObjectID{Namespace: item.Namespace, Name: item.Name, GroupKind: gvk.GroupKind()}.String()
			out = append(out, liveObject{id: id, uid: string(item.UID), resourceVersion: item.ResourceVersion,
				revision: item.Labels[render.LabelRevision]})
		}
	}
	slices.SortFunc(out, func(a, b liveObject) int { return cmp.Compare(a.id, b.id) })
	return out
}

// meshEvent returns nil once an event with the reason was recorded on the mesh.
func meshEvent(mesh *meshv1.ServiceMesh, reason string) error {
	_, err := findMeshEvent(mesh, reason)
	return err
}

func findMeshEvent(mesh *meshv1.ServiceMesh, reason string) (*eventsv1.Event, error) {
	events := &eventsv1.EventList{}
	if err := k8sClient.List(context.Background(), events); err != nil {
		return nil, err
	}
	for i, e := range events.Items {
		if e.Regarding.Kind == "ServiceMesh" && e.Regarding.Name == mesh.Name && e.Reason == reason {
			return &events.Items[i], nil
		}
	}
	return nil, fmt.Errorf("no %s event for ServiceMesh %s among %d events", reason, mesh.Name, len(events.Items))
}

// Rebuilding the inventory from live objects must not reach what outlives a deleted mesh: a Namespace or CRD left by
// an earlier mesh of the same name is not this mesh's to prune (deleting it deletes everything it holds).
func TestObjectsLeftByAnEarlierMeshOfTheSameNameAreNotPruned(t *testing.T) {
	ctx := context.Background()
	earlier := installReady(t, "reuse")
	deleteMesh(t, earlier)
	leftNamespace := &corev1.Namespace{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Name: earlier.Spec.Namespace}, leftNamespace); err != nil {
		t.Fatal(err)
	}

	later := installReady(t, "reuse", func(m *meshv1.ServiceMesh) { m.Spec.Namespace = "reuse-again-system" })
	reconcileAfter(t, func() { poke(t, later) })
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(leftNamespace), leftNamespace); err != nil || leftNamespace.DeletionTimestamp != nil {
		t.Errorf("the earlier mesh's namespace was deleted by the later one (err %v, deletionTimestamp %v)", err, leftNamespace.DeletionTimestamp)
	}
	if slices.Contains(later.Status.Inventory.Entries, "_"+earlier.Spec.Namespace+"__Namespace") {
		t.Errorf("the later mesh's inventory lists the earlier mesh's namespace")
	}
}
