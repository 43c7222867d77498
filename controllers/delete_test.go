package controllers

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/apply"
	"github.com/meshwright/meshwright/internal/render"
)

func TestDeleteRemovesEverythingButCRDsAndNamespace(t *testing.T) {
	ctx := context.Background()
	mesh := installReady(t, "delete")
	entries := mesh.Status.Inventory.Entries

	// A user object in the mesh namespace, which Meshwright never created, must survive.
	userCM := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: mesh.Spec.Namespace, Name: "user-config"},
		Data: map[string]string{"keep": "me"}}
	if err := k8sClient.Create(ctx, userCM); err != nil {
		t.Fatal(err)
	}
	deleteMesh(t, mesh)
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(userCM), userCM); err != nil {
		t.Errorf("a user ConfigMap in the mesh namespace did not survive: %v", err)
	}

	var kept, removed int
	for _, entry := range entries {
		id, _ := apply.ParseID(entry)
		exists := objectExists(t, id)
		switch id.GroupKind.Kind {
		case "CustomResourceDefinition", "Namespace":
			if !exists {
				t.Errorf("%s was deleted; CRDs and the namespace are retained by default", entry)
			}
			kept++
		default:
			if exists {
				t.Errorf("%s survived the ServiceMesh deletion", entry)
			}
			removed++
		}
	}
	if kept == 0 || removed == 0 {
		t.Fatalf("inventory had %d retained and %d removable entries; the test checks nothing", kept, removed)
	}
}

func TestDeleteWithCRDDeletionPolicyDeleteRemovesTheCRDs(t *testing.T) {
	mesh := installReady(t, "delete-crds", func(m *meshv1.ServiceMesh) { m.Spec.CRDDeletionPolicy = meshv1.CRDDeletionPolicyDelete })
	var crds []string
	for _, entry := range mesh.Status.Inventory.Entries {
		if id, _ := apply.ParseID(entry); id.GroupKind.Kind == "CustomResourceDefinition" {
			crds = append(crds, id.Name)
		}
	}
	deleteMesh(t, mesh)
	waitCRDsGone(t, crds...)
}

func objectExists(t *testing.T, id apply.ObjectID) bool {
	t.Helper()
	mapping, err := k8sClient.RESTMapper().RESTMapping(id.GroupKind)
	if err != nil {
		return false
	}
	obj := &metav1.PartialObjectMetadata{}
	obj.SetGroupVersionKind(mapping.GroupVersionKind)
	err = k8sClient.Get(context.Background(), client.ObjectKey{Namespace: id.Namespace, Name: id.Name}, obj)
	if apierrors.IsNotFound(err) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	// Terminating objects (envtest has no garbage collector for namespaced finalizers) count as gone.
	return obj.DeletionTimestamp == nil
}

// laggingCache is a cache that has not seen any object yet, as an informer is while it waits out its watch's backoff
// after its CRD was deleted and created again.
type laggingCache struct{ client.Client }

func (c laggingCache) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	return apierrors.NewNotFound(schema.GroupResource{Resource: "lagging"}, key.Name)
}

// An object the cache does not know yet is still deleted: Delete asks the API server before it counts it as gone.
// (A mesh deleted right after its CRDs came back once left its PeerAuthentication behind.)
func TestDeleteFindsAnObjectTheCacheHasNotSeenYet(t *testing.T) {
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "lagging-cache"}}
	if err := k8sClient.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	owned := func(name string) (*corev1.ConfigMap, string) {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: name,
			Labels: map[string]string{render.LabelOwner: "lagging"}}}
		if err := k8sClient.Create(ctx, cm); err != nil {
			t.Fatal(err)
		}
		return cm, apply.ObjectID{Namespace: ns.Name, Name: name, GroupKind: schema.GroupKind{Kind: "ConfigMap"}}.String()
	}
	gone := func(cm *corev1.ConfigMap) bool {
		err := k8sClient.Get(ctx, client.ObjectKeyFromObject(cm), &corev1.ConfigMap{})
		return apierrors.IsNotFound(err)
	}

	cm, id := owned("confirmed")
	a := &apply.Applier{Reader: laggingCache{reconciler.Client}, Writer: laggingCache{reconciler.Client}, Uncached: k8sClient,
		OwnerLabel: render.LabelOwner, Owner: "lagging"}
	if remaining, err := a.Delete(ctx, []string{id}); err != nil || len(remaining) != 0 {
		t.Fatalf("Delete: remaining %v, err %v", remaining, err)
	}
	if !gone(cm) {
		t.Error("the object the cache did not know survived Delete")
	}

	// Without the API server's word, the lagging cache alone would have let it survive.
	cm, id = owned("unconfirmed")
	a.Uncached = nil
	if _, err := a.Delete(ctx, []string{id}); err != nil {
		t.Fatal(err)
	}
	if gone(cm) {
		t.Error("without Uncached the object was deleted anyway: the case above proves nothing")
	}
}
