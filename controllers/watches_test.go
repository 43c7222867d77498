package controllers

import (
	"slices"
	"testing"

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
