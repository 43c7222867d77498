package controllers

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/apply"
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
