package controllers

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/component-helpers/auth/rbac/validation"
	"sigs.k8s.io/yaml"

	"k8s.io/utils/ptr"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/istio"
	"github.com/meshwright/meshwright/internal/render"
)

func operatorRole(t *testing.T) *rbacv1.ClusterRole {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(data, role); err != nil {
		t.Fatal(err)
	}
	return role
}

// everyComponent is a spec of a profile with every optional component on: an autoscaled ingress gateway, an egress
// gateway with a PodDisruptionBudget, the CNI node agent, the Gateway API CRDs, Prometheus Operator monitors for an
// External Prometheus, and the other add-ons Managed (Kiali allowed to write).
func everyComponent(profile string) meshv1.ServiceMeshSpec {
	return meshv1.ServiceMeshSpec{Profile: profile,
		Gateways: []meshv1.Gateway{
			{Name: "istio-ingressgateway", Namespace: "istio-ingress", Autoscaling: &meshv1.Autoscaling{MinReplicas: 2, MaxReplicas: 4}},
			{Name: "istio-egressgateway", Namespace: "istio-system", Type: meshv1.GatewayEgress, Replicas: ptr.To[int32](2)}},
		CNI:        &meshv1.CNI{Enabled: ptr.To(true)},
		GatewayAPI: &meshv1.GatewayAPI{InstallCRDs: true},
		Addons: &meshv1.Addons{
			Prometheus: &meshv1.PrometheusAddon{Addon: meshv1.Addon{Mode: meshv1.AddonExternal, URL: "http://prometheus.monitoring:9090"},
				Monitors: &meshv1.PrometheusMonitors{Enabled: true}},
			Grafana: &meshv1.GrafanaAddon{}, Tracing: &meshv1.TracingAddon{}, Kiali: &meshv1.KialiAddon{ViewOnly: ptr.To(false)}},
	}
}

// renderAll renders every catalog version with every accepted profile and every component on.
func renderAll(t *testing.T, each func(version, profile string, objs []*unstructured.Unstructured)) {
	t.Helper()
	for _, v := range istio.DefaultCatalog.Versions {
		for _, profile := range meshv1.Profiles {
			objs, err := render.Render(render.Config{MeshName: "m", Namespace: "istio-system", Hub: "h", Version: v,
				Spec: everyComponent(profile)})
			if err != nil {
				t.Fatalf("rendering Istio %s, profile %s: %v", v.Version, profile, err)
			}
			each(v.Version, profile, objs)
		}
	}
}

// The API server refuses to let the operator create istiod's ClusterRoles and Roles unless the operator holds every
// permission they grant (no escalate verb is given). This checks that the generated manager ClusterRole covers each
// rendered rule, for every version and profile.
func TestOperatorRBACCoversTheRenderedRBAC(t *testing.T) {
	role := operatorRole(t)
	roles := 0
	renderAll(t, func(version, profile string, objs []*unstructured.Unstructured) {
		for _, o := range objs {
			if o.GetKind() != "ClusterRole" && o.GetKind() != "Role" {
				continue
			}
			roles++
			rendered := &rbacv1.ClusterRole{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, rendered); err != nil {
				t.Fatal(err)
			}
			if ok, missing := validation.Covers(role.Rules, rendered.Rules); !ok {
				t.Errorf("Istio %s, profile %s: %s %s grants what the operator lacks; add kubebuilder:rbac markers for: %+v",
					version, profile, o.GetKind(), o.GetName(), missing)
			}
		}
	})
	if roles == 0 {
		t.Fatal("the render has no Role or ClusterRole; the test checks nothing")
	}
}

// Every kind any version and profile renders must be readable, watchable, appliable and deletable by the operator,
// or the install fails under the operator's own ServiceAccount.
func TestOperatorRBACCoversEveryRenderedKind(t *testing.T) {
	role := operatorRole(t)
	verbs := []string{"get", "list", "watch", "create", "patch", "update", "delete"}
	seen := map[schema.GroupKind]bool{}
	renderAll(t, func(version, profile string, objs []*unstructured.Unstructured) {
		for _, o := range objs {
			gk := o.GroupVersionKind().GroupKind()
			if seen[gk] {
				continue
			}
			seen[gk] = true
			resource := pluralOf(t, objs, gk)
			for _, verb := range verbs {
				want := rbacv1.PolicyRule{APIGroups: []string{gk.Group}, Resources: []string{resource}, Verbs: []string{verb}}
				if gk.Kind == "CustomResourceDefinition" && slices.Contains([]string{"patch", "update", "delete"}, verb) {
					want.ResourceNames = []string{o.GetName()}
				}
				if ok, _ := validation.Covers(role.Rules, []rbacv1.PolicyRule{want}); !ok {
					t.Errorf("Istio %s, profile %s renders %s %s, but the operator may not %s %s.%s",
						version, profile, gk.Kind, o.GetName(), verb, resource, gk.Group)
				}
			}
		}
	})
	for _, gk := range []schema.GroupKind{{Group: "apps", Kind: "Deployment"}, {Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}} {
		if !seen[gk] {
			t.Errorf("no render contains a %s; the test checks too little", gk)
		}
	}
}

// Wildcards are held only where istiod's own roles hold them, and nothing lets the operator grant itself more.
func TestOperatorRBACHoldsNoOtherWildcardAndCannotEscalate(t *testing.T) {
	allowedResourceWildcards := []string{"config.istio.io", "security.istio.io", "networking.istio.io",
		"authentication.istio.io", "rbac.istio.io", "telemetry.istio.io", "extensions.istio.io",
		"gateway.networking.k8s.io", "gateway.networking.x-k8s.io", "networking.x-k8s.io"}
	for _, rule := range operatorRole(t).Rules {
		for _, g := range rule.APIGroups {
			if g == "*" {
				t.Errorf("rule %+v grants every API group", rule)
			}
			if slices.Contains(rule.Resources, "*") && !slices.Contains(allowedResourceWildcards, g) {
				t.Errorf("rule %+v grants every resource of %q", rule, g)
			}
			if slices.Contains(rule.Verbs, "*") && !(g == "networking.k8s.io" && slices.Equal(rule.Resources, []string{"ingresses/status"})) {
				t.Errorf("rule %+v grants every verb", rule)
			}
		}
		for _, v := range rule.Verbs {
			if v == "escalate" || v == "bind" || v == "impersonate" {
				t.Errorf("rule %+v grants %s", rule, v)
			}
		}
	}
}

// The ServiceMesh API, its status and finalizers, and events: what the manager needs before it can reconcile at all.
func TestOperatorRBACCoversItsOwnAPI(t *testing.T) {
	role := operatorRole(t)
	for _, want := range []rbacv1.PolicyRule{
		{APIGroups: []string{meshv1.GroupVersion.Group}, Resources: []string{"servicemeshes"}, Verbs: []string{"get", "list", "watch", "update", "patch"}},
		{APIGroups: []string{meshv1.GroupVersion.Group}, Resources: []string{"servicemeshes/status"}, Verbs: []string{"get", "update", "patch"}},
		{APIGroups: []string{meshv1.GroupVersion.Group}, Resources: []string{"servicemeshes/finalizers"}, Verbs: []string{"update"}},
		{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	} {
		if ok, missing := validation.Covers(role.Rules, []rbacv1.PolicyRule{want}); !ok {
			t.Errorf("the operator lacks %+v", missing)
		}
	}
	if ok, _ := validation.Covers(role.Rules, []rbacv1.PolicyRule{{APIGroups: []string{meshv1.GroupVersion.Group},
		Resources: []string{"servicemeshes"}, Verbs: []string{"create"}}}); ok {
		t.Error("the operator may create ServiceMeshes; it never needs to")
	}
}

// The CRD rule's resourceNames are exactly the CRDs the catalog renders: regenerate with `make manifests`.
func TestCRDPermissionsFollowTheCatalog(t *testing.T) {
	want, err := render.CatalogCRDNames(istio.DefaultCatalog)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rule := range operatorRole(t).Rules {
		if slices.Contains(rule.APIGroups, "apiextensions.k8s.io") && slices.Contains(rule.Verbs, "delete") {
			got = append(got, rule.ResourceNames...)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("the CRDs the operator may update and delete differ from those the catalog renders; run `make manifests`\n got: %v\nwant: %v", got, want)
	}
	if len(want) < 10 {
		t.Errorf("only %d CRDs rendered; the base chart should bring Istio's", len(want))
	}
}

// The enum of spec.profile in the CRD and meshv1.Profiles are one list.
func TestProfilesMatchTheCRDEnum(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "config", "crd", "bases", "mesh.meshwright.dev_servicemeshes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.Unmarshal(data, crd); err != nil {
		t.Fatal(err)
	}
	var enum []string
	for _, e := range crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["profile"].Enum {
		enum = append(enum, strings.Trim(string(e.Raw), `"`))
	}
	if !slices.Equal(enum, meshv1.Profiles) {
		t.Errorf("CRD enum %v, meshv1.Profiles %v", enum, meshv1.Profiles)
	}
}

var irregularPlurals = regexp.MustCompile(`(?i)(polic)y$`)

// pluralOf maps a rendered kind to its resource: from a rendered CRD when the kind is one, else by Kubernetes'
// regular pluralisation of built-in kinds (lowercase, "y" → "ies", else "s").
func pluralOf(t *testing.T, objs []*unstructured.Unstructured, gk schema.GroupKind) string {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, crd); err != nil {
			t.Fatal(err)
		}
		if crd.Spec.Group == gk.Group && crd.Spec.Names.Kind == gk.Kind {
			return crd.Spec.Names.Plural
		}
	}
	lower := strings.ToLower(gk.Kind)
	if irregularPlurals.MatchString(lower) {
		return strings.TrimSuffix(lower, "y") + "ies"
	}
	return lower + "s"
}
