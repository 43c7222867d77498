package render

import (
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/istio"
)

// TestCRDPlanMatchesTheChartsOwnTemplate renders the base chart of every catalog version through crdPlanTemplate and
// through the chart's own crds.yaml, with the values that change what crds.yaml does, and wants the same objects.
func TestCRDPlanMatchesTheChartsOwnTemplate(t *testing.T) {
	cases := map[string]string{
		"default":                   ``,
		"demo profile":              ``,
		"excluded CRDs":             `{"base":{"excludedCRDs":["wasmplugins.extensions.istio.io","telemetries.telemetry.istio.io"]}}`,
		"CRDs as the file has them": `{"base":{"enableCRDTemplates":false}}`,
		"namespace scope":           `{"global":{"resourceScope":"namespace"}}`,
		"cluster scope":             `{"global":{"resourceScope":"cluster"}}`,
	}
	for _, v := range istio.DefaultCatalog.Versions {
		chrt, err := istio.LoadChart(v, istio.ChartBase)
		if err != nil {
			t.Fatal(err)
		}
		plan := withCRDPlan(chrt)
		if plan == nil {
			t.Fatalf("Istio %s: the base chart's crds.yaml is not one crdPlanTemplate stands in for; check that it still "+
				"decides the same, then add its SHA-256 to knownCRDTemplates", v.Version)
		}
		for name, raw := range cases {
			t.Run(v.Version+"/"+name, func(t *testing.T) {
				spec := meshv1.ServiceMeshSpec{}
				if name == "demo profile" {
					spec.Profile = "demo"
				}
				if raw != "" {
					spec.Values = &apiextensionsv1.JSON{Raw: []byte(raw)}
				}
				cfg := Config{MeshName: "default", Namespace: "istio-system", Hub: istio.DefaultCatalog.Hub, Version: v,
					KubeVersion: "v1.37.0", Spec: spec}
				profile, err := istio.ProfileValues(chrt, spec.Profile)
				if err != nil {
					t.Fatal(err)
				}
				values, err := Values(cfg, Revision{Version: v}, profile)
				if err != nil {
					t.Fatal(err)
				}
				want, err := renderPlanned(cfg, chrt, nil, values, "base", cfg.Namespace)
				if err != nil {
					t.Fatal(err)
				}
				got, err := renderPlanned(cfg, chrt, plan, values, "base", cfg.Namespace)
				if err != nil {
					t.Fatal(err)
				}
				Sort(want)
				Sort(got)
				crds := 0
				for _, o := range want {
					if o.GetKind() == "CustomResourceDefinition" {
						crds++
					}
				}
				if len(got) != len(want) {
					t.Fatalf("%d objects through the plan, %d through crds.yaml", len(got), len(want))
				}
				for i := range want {
					if !equality.Semantic.DeepEqual(got[i].Object, want[i].Object) {
						t.Errorf("%s %s differs from what crds.yaml renders", want[i].GetKind(), want[i].GetName())
					}
				}
				t.Logf("%d objects, %d CRDs", len(want), crds)
			})
		}
	}
}

// TestAPrefetchServesOneRender checks that a render takes the CRDs PrefetchCRDs decoded, with the same result as a
// render without one, and that the next render decodes its own (renders never share objects).
func TestAPrefetchServesOneRender(t *testing.T) {
	v := istio.DefaultCatalog.Versions[0]
	cfg := Config{MeshName: "default", Namespace: "istio-system", Hub: istio.DefaultCatalog.Hub, Version: v,
		KubeVersion: "v1.37.0", Spec: meshv1.DefaultSpec()}
	want, err := Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	chrt, err := istio.LoadChart(v, istio.ChartBase)
	if err != nil {
		t.Fatal(err)
	}
	PrefetchCRDs(v)
	p, ok := prefetches.Load(chrt)
	if !ok {
		t.Fatal("PrefetchCRDs started no prefetch")
	}
	<-p.(*prefetch).done
	first, err := Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := prefetches.Load(chrt); ok {
		t.Fatal("the render did not take the prefetch")
	}
	if !equality.Semantic.DeepEqual(first, want) {
		t.Fatal("a render with the prefetched CRDs differs from one without")
	}
	taken := map[*unstructured.Unstructured]bool{}
	for _, o := range p.(*prefetch).objs {
		taken[o] = true
	}
	second, err := Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range second {
		if taken[o] {
			t.Fatalf("the next render shares %s with the one that took the prefetch", o.GetName())
		}
	}
	PrefetchCRDs(v)
	ForgetPrefetched()
	if _, ok := prefetches.Load(chrt); ok {
		t.Fatal("ForgetPrefetched left a prefetch")
	}
}
