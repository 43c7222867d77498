package controllers

import (
	"context"
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/testutil"
)

// A reconcile reads its mesh from the cache only when the cache holds the very version the last reconcile read from
// the API server or wrote; when the cache holds any other version, newer or older, the mesh is read from the API
// server.
func TestReadMeshUsesTheCacheOnlyAtTheVersionLastSeen(t *testing.T) {
	ctx := context.Background()
	// Paused: the suite's reconciler only writes its status.
	mesh := &meshv1.ServiceMesh{ObjectMeta: metav1.ObjectMeta{Name: "read-mesh", Annotations: map[string]string{meshv1.AnnotationPaused: "true"}},
		Spec: meshv1.DefaultSpec()}
	mesh.Spec.Namespace = "read-mesh-system"
	if err := k8sClient.Create(ctx, mesh); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8sClient.Delete(ctx, mesh) })
	key := client.ObjectKeyFromObject(mesh)
	server := &countingReader{Reader: managerAPIReader}
	r := &ServiceMeshReconciler{Client: reconciler.Client, APIReader: server, cache: reconciler.cache}

	// Wait until the suite's reconciler has reported the pause, and the cache holds the version the API server has.
	waitForMesh(t, mesh, func(m *meshv1.ServiceMesh) error {
		if !meta.IsStatusConditionTrue(m.Status.Conditions, meshv1.ConditionPaused) {
			return fmt.Errorf("conditions %v, want Paused", m.Status.Conditions)
		}
		return nil
	})
	var settled string
	testutil.Eventually(t, waitTimeout, func() error {
		live, cached := &meshv1.ServiceMesh{}, &meshv1.ServiceMesh{}
		if err := managerAPIReader.Get(ctx, key, live); err != nil {
			return err
		}
		if err := reconciler.cache.Get(ctx, key, cached); err != nil {
			return err
		}
		if live.ResourceVersion != cached.ResourceVersion {
			return fmt.Errorf("the cache holds version %s, the API server %s", cached.ResourceVersion, live.ResourceVersion)
		}
		settled = live.ResourceVersion
		return nil
	})

	if _, err := r.readMesh(ctx, key); err != nil || server.gets != 1 {
		t.Fatalf("a mesh never seen: err %v, %d reads from the API server, want 1", err, server.gets)
	}
	r.seen.Store(key.Name, settled)
	got, err := r.readMesh(ctx, key)
	if err != nil || server.gets != 1 || got.ResourceVersion != settled {
		t.Fatalf("the version last seen: err %v, %d reads from the API server (want 1), version %s (want %s)", err, server.gets, got.ResourceVersion, settled)
	}

	patch := client.MergeFrom(got.DeepCopy())
	got.Annotations["meshwright.dev/test"] = "changed"
	if err := k8sClient.Patch(ctx, got, patch); err != nil {
		t.Fatal(err)
	}
	// Once the cache holds the version someone else wrote (its event reconciles the mesh again), it is not the one
	// last seen: the mesh comes from the API server. Until then the cache holds the version last seen, never older.
	testutil.Eventually(t, waitTimeout, func() error {
		cached := &meshv1.ServiceMesh{}
		if err := reconciler.cache.Get(ctx, key, cached); err != nil {
			return err
		}
		if cached.ResourceVersion != got.ResourceVersion {
			return fmt.Errorf("the cache holds version %s, not yet %s", cached.ResourceVersion, got.ResourceVersion)
		}
		return nil
	})
	fresh, err := r.readMesh(ctx, key)
	if err != nil || server.gets != 2 || fresh.Annotations["meshwright.dev/test"] != "changed" {
		t.Fatalf("a version written by someone else: err %v, %d reads from the API server (want 2), annotations %v", err, server.gets, fresh.Annotations)
	}
	r.seen.Store(key.Name, "1") // a version older than the cache's
	if _, err := r.readMesh(ctx, key); err != nil || server.gets != 3 {
		t.Fatalf("a cache at another version than the last seen: err %v, %d reads from the API server, want 3", err, server.gets)
	}

	// A mesh being deleted is read from the API server even at the version last seen: the cache keeps the version whose
	// finalizer was removed until the deletion's own event.
	held := fresh.DeepCopy()
	hold := client.MergeFrom(held.DeepCopy())
	held.Finalizers = append(held.Finalizers, "meshwright.dev/test-hold")
	if err := k8sClient.Patch(ctx, held, hold); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		latest := &meshv1.ServiceMesh{}
		if k8sClient.Get(ctx, key, latest) == nil {
			release := client.MergeFrom(latest.DeepCopy())
			latest.Finalizers = nil
			_ = k8sClient.Patch(ctx, latest, release)
		}
	})
	if err := k8sClient.Delete(ctx, held); err != nil {
		t.Fatal(err)
	}
	var deleting string
	testutil.Eventually(t, waitTimeout, func() error {
		cached := &meshv1.ServiceMesh{}
		if err := reconciler.cache.Get(ctx, key, cached); err != nil {
			return err
		}
		if cached.DeletionTimestamp.IsZero() {
			return fmt.Errorf("the cache does not hold the mesh being deleted yet")
		}
		deleting = cached.ResourceVersion
		return nil
	})
	r.seen.Store(key.Name, deleting)
	if _, err := r.readMesh(ctx, key); err != nil || server.gets != 4 {
		t.Fatalf("a mesh being deleted, at the version last seen: err %v, %d reads from the API server, want 4", err, server.gets)
	}
}
