package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

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
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

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

// listingReader is the API server's side of checkConflicts and readLive: it answers with meshes and Deployments, and
// counts the lists.
type listingReader struct {
	client.Reader
	meshes      []meshv1.ServiceMesh
	deployments []appsv1.Deployment
	lists       atomic.Int32
}

func (r *listingReader) List(_ context.Context, list client.ObjectList, _ ...client.ListOption) error {
	r.lists.Add(1)
	switch l := list.(type) {
	case *meshv1.ServiceMeshList:
		l.Items = append(l.Items[:0], r.meshes...)
	case *appsv1.DeploymentList:
		l.Items = append(l.Items[:0], r.deployments...)
	default:
		return errors.New("unexpected list")
	}
	return nil
}

// TestConflictCheckAsksTheAPIServerUnlessTheMeshHoldsAlone checks the decision of checkConflicts: which answers come
// from the cache and which from the API server. The cache is a stand-in (controller-runtime's fake client): two meshes
// on a real API server are the envtest tests above.
func TestConflictCheckAsksTheAPIServerUnlessTheMeshHoldsAlone(t *testing.T) {
	mesh := func(name string, uid types.UID, age time.Duration, applied bool) meshv1.ServiceMesh {
		m := meshv1.ServiceMesh{ObjectMeta: metav1.ObjectMeta{Name: name, UID: uid,
			CreationTimestamp: metav1.NewTime(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(-age))}}
		if applied {
			m.Status.Inventory = &meshv1.Inventory{Entries: []string{"_istio-system__Namespace"}}
		}
		return m
	}
	ours := mesh("ours", "uid-ours", 0, true)
	fresh := mesh("ours", "uid-ours", 0, false)
	other := mesh("other", "uid-other", time.Hour, true)
	cases := []struct {
		name     string
		self     meshv1.ServiceMesh
		cache    []meshv1.ServiceMesh
		server   []meshv1.ServiceMesh
		lists    int32
		conflict bool
	}{
		{"applied and alone in the cache", ours, []meshv1.ServiceMesh{ours}, []meshv1.ServiceMesh{ours}, 0, false},
		// A mesh created a moment ago, not in the cache yet: the API server's list is the answer.
		{"applied, another mesh only on the server", ours, []meshv1.ServiceMesh{ours}, []meshv1.ServiceMesh{ours, mesh("new", "uid-new", time.Hour, false)}, 0, false},
		{"nothing applied yet", fresh, []meshv1.ServiceMesh{fresh}, []meshv1.ServiceMesh{fresh, other}, 1, true},
		{"another mesh in the cache", ours, []meshv1.ServiceMesh{ours, other}, []meshv1.ServiceMesh{ours, other}, 1, true},
		{"not in the cache yet", ours, nil, []meshv1.ServiceMesh{ours}, 1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := fake.NewClientBuilder().WithScheme(testutil.Scheme)
			for i := range tc.cache {
				b = b.WithObjects(tc.cache[i].DeepCopy())
			}
			server := &listingReader{meshes: tc.server}
			r := &ServiceMeshReconciler{Client: b.Build(), APIReader: server}
			s := &scope{mesh: tc.self.DeepCopy()}
			_, err := r.checkConflicts(context.Background(), s)
			if got := server.lists.Load(); got != tc.lists {
				t.Errorf("%d lists from the API server, want %d", got, tc.lists)
			}
			if conflict := err != nil && s.outcome.Reason == meshv1.ReasonConflict; conflict != tc.conflict {
				t.Errorf("conflict %v (%v), want %v", conflict, err, tc.conflict)
			}
		})
	}
}
