package controllers

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/istio"
	"github.com/meshwright/meshwright/internal/render"
)

// Every kind a renderer can emit must be watched, or a deleted or edited object of that kind would not be restored
// until something else triggers a reconcile.
func TestEveryRenderedKindIsWatched(t *testing.T) {
	specs := map[string]meshv1.ServiceMeshSpec{
		"fixed replicas with a PodDisruptionBudget": {ControlPlane: &meshv1.ControlPlane{Replicas: ptr.To[int32](2),
			PodDisruptionBudget: &meshv1.PodDisruptionBudget{Enabled: true}}},
	}
	for _, profile := range meshv1.Profiles {
		specs["profile "+profile] = meshv1.ServiceMeshSpec{Profile: profile}
		specs["profile "+profile+" with every component"] = everyComponent(profile)
	}
	for _, v := range istio.DefaultCatalog.Versions {
		for name, spec := range specs {
			t.Run(v.Version+" "+name, func(t *testing.T) {
				objs, err := render.Render(render.Config{MeshName: "m", Namespace: "istio-system", Hub: "h", Version: v, Spec: spec})
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range objs {
					if !slices.Contains(WatchedKinds, o.GroupVersionKind()) && !slices.Contains(CRDBackedKinds, o.GroupVersionKind()) {
						t.Errorf("the renderer emits %s, which is not in WatchedKinds", o.GroupVersionKind())
					}
				}
			})
		}
	}
}

func TestUsageMetadataKeepsWhatTheUsageCountReads(t *testing.T) {
	deleting := metav1.Now()
	pod := &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "app-1", Namespace: "shop", UID: "u1", ResourceVersion: "42",
			DeletionTimestamp: &deleting, Labels: map[string]string{"istio.io/rev": "default", "app": "shop"},
			Annotations:     map[string]string{"sidecar.istio.io/status": `{"initContainers":["istio-init"],"containers":["istio-proxy"]}`},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "app-5d4f", UID: "rs"}},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager"}},
			Finalizers:      []string{"example.com/keep"}, GenerateName: "app-"},
	}
	out, err := usageMetadata(pod)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*metav1.PartialObjectMetadata)
	want := metav1.ObjectMeta{Name: "app-1", Namespace: "shop", UID: "u1", ResourceVersion: "42", DeletionTimestamp: &deleting,
		Labels: map[string]string{"istio.io/rev": "default", "app": "shop"}}
	if !equality.Semantic.DeepEqual(got.ObjectMeta, want) {
		t.Fatalf("usageMetadata kept %+v, want %+v", got.ObjectMeta, want)
	}
	if got.Kind != "Pod" {
		t.Fatalf("usageMetadata dropped the kind: %+v", got.TypeMeta)
	}
	// Anything else (a tombstone of a deleted object) passes through untouched.
	tombstone := "not an object"
	if out, err := usageMetadata(tombstone); err != nil || out != tombstone {
		t.Fatalf("usageMetadata(%q) = %v, %v", tombstone, out, err)
	}
}
