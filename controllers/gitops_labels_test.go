package controllers

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/apply"
)

// Argo CD tracks what belongs to an Application by a label (app.kubernetes.io/instance) or an annotation
// (argocd.argoproj.io/tracking-id). Copied from the ServiceMesh onto rendered objects, either would make Argo CD
// claim istiod and the rest as the Application's own, show them OutOfSync, and prune them.
func TestServiceMeshLabelsAndAnnotationsAreNotCopiedToRenderedObjects(t *testing.T) {
	ctx := context.Background()
	meshLabels := map[string]string{"app.kubernetes.io/instance": "my-argocd-app", "team": "platform"}
	meshAnnotations := map[string]string{
		"argocd.argoproj.io/tracking-id":  "my-argocd-app:mesh.meshwright.dev/ServiceMesh:/tracked",
		"argocd.argoproj.io/sync-options": "SkipDryRunOnMissingResource=true",
	}
	mesh := installReady(t, "tracked", func(m *meshv1.ServiceMesh) {
		m.Labels = meshLabels
		m.Annotations = meshAnnotations
	})

	entries := mesh.Status.Inventory.Entries
	if len(entries) < 10 {
		t.Fatalf("inventory has %d entries, expected the full render: %v", len(entries), entries)
	}
	for _, entry := range entries {
		t.Run(entry+" carries none of the ServiceMesh's labels and annotations", func(t *testing.T) {
			id, err := apply.ParseID(entry)
			if err != nil {
				t.Fatal(err)
			}
			mapping, err := k8sClient.RESTMapper().RESTMapping(id.GroupKind)
			if err != nil {
				t.Fatal(err)
			}
			obj := &unstructured.Unstructured{}
			obj.SetGroupVersionKind(mapping.GroupVersionKind)
			if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: id.Namespace, Name: id.Name}, obj); err != nil {
				t.Fatal(err)
			}
			for k, v := range meshLabels {
				if obj.GetLabels()[k] == v {
					t.Errorf("label %s=%s copied from the ServiceMesh", k, v)
				}
			}
			for k := range obj.GetAnnotations() {
				if _, copied := meshAnnotations[k]; copied || strings.HasPrefix(k, "argocd.argoproj.io/") {
					t.Errorf("annotation %s copied from the ServiceMesh", k)
				}
			}
			// Nor anywhere deeper, such as a pod template's labels.
			data, err := obj.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(data), "my-argocd-app") {
				t.Error("the Argo CD application name appears in the object")
			}
		})
	}
}
