package controllers

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/render"
	"github.com/meshwright/meshwright/internal/testutil"
)

func TestOnlyOneServiceMeshManagesTheControlPlane(t *testing.T) {
	// Created back to back, usually within the same second; "conflict-b" first, so that creation order and name
	// order disagree.
	first := createMesh(t, "conflict-b")
	second := createMesh(t, "conflict-a")
	var holder, other *meshv1.ServiceMesh

	t.Run("of two meshes created back to back exactly one proceeds, and the other is Stalled Conflict with nothing rendered", func(t *testing.T) {
		testutil.Eventually(t, waitTimeout, func() error {
			var conflicted []*meshv1.ServiceMesh
			for _, m := range []*meshv1.ServiceMesh{first, second} {
				if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(m), m); err != nil {
					return err
				}
				if c := meta.FindStatusCondition(m.Status.Conditions, meshv1.ConditionStalled); c != nil && c.Reason == meshv1.ReasonConflict {
					conflicted = append(conflicted, m)
				}
			}
			if len(conflicted) != 1 {
				return fmt.Errorf("%d meshes Stalled with reason Conflict, want 1", len(conflicted))
			}
			holder, other = first, second
			if conflicted[0] == first {
				holder, other = second, first
			}
			if holder.Status.Inventory == nil || len(holder.Status.Inventory.Entries) == 0 {
				return fmt.Errorf("%s has applied nothing yet", holder.Name)
			}
			return nil
		})
		// Let every reconcile the holder's objects cause run, then look at what the other one owns.
		reconcileAfter(t, func() { poke(t, other) })
		waitForMesh(t, other, condition(meshv1.ConditionStalled, metav1.ConditionTrue, meshv1.ReasonConflict))
		if err := testutil.WantKStatus(other, status.FailedStatus); err != nil {
			t.Error(err)
		}
		if other.Status.Inventory != nil && len(other.Status.Inventory.Entries) > 0 {
			t.Errorf("%s has an inventory %v, want nothing applied", other.Name, other.Status.Inventory.Entries)
		}
		assertOwnsNothing(t, other)
	})

	t.Run("once the mesh holding the control plane is deleted, the other proceeds to Ready by itself", func(t *testing.T) {
		if holder == nil {
			t.Fatal("no holder found by the previous step")
		}
		deleteMesh(t, holder)
		waitForMesh(t, other, func(m *meshv1.ServiceMesh) error {
			if m.Status.Inventory == nil || len(m.Status.Inventory.Entries) == 0 {
				return fmt.Errorf("%s has applied nothing yet (conditions %+v)", m.Name, m.Status.Conditions)
			}
			return nil
		})
		markRolledOut(t, other.Spec.Namespace, "istiod")
		waitForMesh(t, other, condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady))
	})
}

// assertOwnsNothing fails when any object carries the mesh's owner label, or its namespace exists.
func assertOwnsNothing(t *testing.T, mesh *meshv1.ServiceMesh) {
	t.Helper()
	ctx := context.Background()
	owned := client.MatchingLabels{render.LabelOwner: mesh.Name}
	for _, list := range []client.ObjectList{&apiextensionsv1.CustomResourceDefinitionList{}, &appsv1.DeploymentList{}, &corev1.ConfigMapList{}} {
		if err := k8sClient.List(ctx, list, owned); err != nil {
			t.Fatal(err)
		}
		if n := meta.LenList(list); n > 0 {
			t.Errorf("%d %T items carry %s's owner label", n, list, mesh.Name)
		}
	}
	err := k8sClient.Get(ctx, client.ObjectKey{Name: mesh.Spec.Namespace}, &corev1.Namespace{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s: %v, want it never created", mesh.Spec.Namespace, err)
	}
}

func TestControlPlaneHolderIsDecidedTheSameWayByEveryMesh(t *testing.T) {
	at := func(sec int64) metav1.Time { return metav1.Unix(1_800_000_000+sec, 0) }
	mesh := func(name string, created metav1.Time, applied, deleting bool) meshv1.ServiceMesh {
		m := meshv1.ServiceMesh{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(name), CreationTimestamp: created}}
		if applied {
			m.Status.Inventory = &meshv1.Inventory{Entries: []string{"_istio-system_core_Namespace"}}
		}
		if deleting {
			m.DeletionTimestamp = ptr.To(at(100))
		}
		return m
	}
	cases := []struct {
		name   string
		meshes []meshv1.ServiceMesh
		want   string
	}{
		{"the oldest holds it", []meshv1.ServiceMesh{mesh("b", at(2), false, false), mesh("a", at(1), false, false)}, "a"},
		{"within the same second the first name holds it", []meshv1.ServiceMesh{mesh("b", at(1), false, false), mesh("a", at(1), false, false)}, "a"},
		{"a mesh that already applied keeps it against a same-second mesh with a smaller name",
			[]meshv1.ServiceMesh{mesh("a", at(1), false, false), mesh("b", at(1), true, false)}, "b"},
		{"when both applied (an older operator let both proceed) the oldest holds it",
			[]meshv1.ServiceMesh{mesh("b", at(1), true, false), mesh("a", at(2), true, false)}, "b"},
		{"a mesh being deleted holds it until it is gone",
			[]meshv1.ServiceMesh{mesh("old", at(1), true, true), mesh("new", at(5), false, false)}, "old"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for range 2 { // in either order
				if got := controlPlaneHolder(tc.meshes); got == nil || got.Name != tc.want {
					t.Fatalf("holder of %v is %v, want %s", names(tc.meshes), got, tc.want)
				}
				slices.Reverse(tc.meshes)
			}
		})
	}
}

func names(meshes []meshv1.ServiceMesh) []string {
	var out []string
	for _, m := range meshes {
		out = append(out, m.Name)
	}
	return out
}

// TestConflictCheckAsksTheAPIServerUnlessTheMeshHoldsAlone checks the decision of checkConflicts against envtest's API
// server and the manager's cache: which answers come from the cache and which from the API server. The meshes are
// paused, so the suite's controller writes nothing but their conditions; the check runs on its own reconciler, whose
// API reader counts its lists.
func TestConflictCheckAsksTheAPIServerUnlessTheMeshHoldsAlone(t *testing.T) {
	ctx := context.Background()
	paused := func(m *meshv1.ServiceMesh) {
		metav1.SetMetaDataAnnotation(&m.ObjectMeta, meshv1.AnnotationPaused, "true")
	}
	markApplied := func(m *meshv1.ServiceMesh) {
		t.Helper()
		before := m.DeepCopy()
		m.Status.Inventory = &meshv1.Inventory{Entries: []string{"_" + m.Spec.Namespace + "__Namespace"}}
		if err := k8sClient.Status().Patch(ctx, m, client.MergeFrom(before)); err != nil {
			t.Fatal(err)
		}
	}
	// cachedMeshes waits until the manager's cache holds exactly these meshes, with their inventories.
	cachedMeshes := func(want ...*meshv1.ServiceMesh) {
		t.Helper()
		testutil.Eventually(t, waitTimeout, func() error {
			list := &meshv1.ServiceMeshList{}
			if err := reconciler.Client.List(ctx, list); err != nil {
				return err
			}
			if len(list.Items) != len(want) {
				return fmt.Errorf("the cache holds %d ServiceMeshes, want %d", len(list.Items), len(want))
			}
			for _, w := range want {
				i := slices.IndexFunc(list.Items, func(m meshv1.ServiceMesh) bool { return m.UID == w.UID })
				if i < 0 || hasApplied(&list.Items[i]) != hasApplied(w) {
					return fmt.Errorf("the cache does not hold ServiceMesh %s as it is yet", w.Name)
				}
			}
			return nil
		})
	}
	check := func(self *meshv1.ServiceMesh, wantLists int, wantConflict bool) {
		t.Helper()
		server := &countingReader{Reader: managerAPIReader}
		r := &ServiceMeshReconciler{Client: reconciler.Client, APIReader: server}
		s := &scope{mesh: self.DeepCopy()}
		_, err := r.checkConflicts(ctx, s)
		if got := server.lists; got != wantLists {
			t.Errorf("%d lists from the API server, want %d", got, wantLists)
		}
		if conflict := err != nil && s.outcome.Reason == meshv1.ReasonConflict; conflict != wantConflict {
			t.Errorf("conflict %v (%v), want %v", conflict, err, wantConflict)
		}
	}

	// Created first, and first by name: the holder among meshes that both applied objects.
	other := createMesh(t, "holds-a-other", paused)
	ours := createMesh(t, "holds-b-ours", paused)
	markApplied(other)
	cachedMeshes(other, ours)
	t.Run("nothing applied yet, another mesh holds", func(t *testing.T) { check(ours, 1, true) })
	markApplied(ours)
	cachedMeshes(other, ours)
	t.Run("applied, another applied mesh in the cache", func(t *testing.T) { check(ours, 1, true) })
	deleteMesh(t, other)
	cachedMeshes(ours)
	t.Run("applied and alone in the cache", func(t *testing.T) { check(ours, 0, false) })
}
