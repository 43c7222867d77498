package controllers

import (
	"os"
	"path/filepath"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/component-helpers/auth/rbac/validation"
	"sigs.k8s.io/yaml"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/istio"
	"github.com/meshwright/meshwright/internal/render"
)

// The API server refuses to let the operator create istiod's ClusterRoles and Roles unless the operator holds every
// permission they grant (no escalate verb is given). This test renders every supported version and a few profiles
// and checks that the generated manager ClusterRole covers each rendered rule.
func TestOperatorRBACCoversTheRenderedRBAC(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	operatorRole := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(data, operatorRole); err != nil {
		t.Fatal(err)
	}
	for _, v := range istio.DefaultCatalog.Versions {
		for _, profile := range []string{"default", "demo", "ambient"} {
			t.Run("covers Istio "+v.Version+" with the "+profile+" profile", func(t *testing.T) {
				objs, err := render.Render(render.Config{MeshName: "m", Namespace: "istio-system", Hub: "h", Version: v,
					Spec: meshv1.ServiceMeshSpec{Profile: profile}})
				if err != nil {
					t.Fatal(err)
				}
				roles := 0
				for _, o := range objs {
					if o.GetKind() != "ClusterRole" && o.GetKind() != "Role" {
						continue
					}
					roles++
					role := &rbacv1.ClusterRole{}
					if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, role); err != nil {
						t.Fatal(err)
					}
					if ok, missing := validation.Covers(operatorRole.Rules, role.Rules); !ok {
						t.Errorf("%s %s grants what the operator lacks; add kubebuilder:rbac markers for: %+v", o.GetKind(), o.GetName(), missing)
					}
				}
				if roles == 0 {
					t.Fatal("the render has no Role or ClusterRole; the test checks nothing")
				}
			})
		}
	}
}
