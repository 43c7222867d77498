package render

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/istio"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// scenarios are the renders kept as golden files.
func scenarios(t *testing.T) map[string]Config {
	resolve := func(v string) istio.Version {
		version, err := istio.DefaultCatalog.Resolve(v, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		return version
	}
	base := func(version string, spec meshv1.ServiceMeshSpec) Config {
		return Config{MeshName: "default", Namespace: "istio-system", Hub: istio.DefaultCatalog.Hub,
			Version: resolve(version), KubeVersion: "v1.37.0", Spec: spec}
	}
	return map[string]Config{
		"default-1.31": base("1.31", meshv1.ServiceMeshSpec{}),
		"default-1.30": base("1.30", meshv1.ServiceMeshSpec{}),
		"minimal-1.31": base("1.31", meshv1.ServiceMeshSpec{Profile: "minimal"}),
		"demo-1.31":    base("1.31", meshv1.ServiceMeshSpec{Profile: "demo"}),
		"cert-manager-ca-1.31": func() Config {
			c := base("1.31", meshv1.ServiceMeshSpec{Security: &meshv1.Security{
				TrustDomain: "prod.example.com", MTLS: "PERMISSIVE",
				CertificateAuthority: &meshv1.CertificateAuthority{Type: meshv1.CACertManager}}})
			c.CARoot = "0123456789abcdef"
			return c
		}(),
		"cert-manager-issuer-ref-1.31": base("1.31", meshv1.ServiceMeshSpec{Security: &meshv1.Security{
			CertificateAuthority: &meshv1.CertificateAuthority{Type: meshv1.CACertManager,
				CertManager: &meshv1.CertManagerCA{IssuerRef: &meshv1.IssuerReference{Name: "corp-pki", Kind: "ClusterIssuer"}}}}}),
		"revisions-1.30-and-1.31-tags-on-1.31": func() Config {
			c := base("1.31", meshv1.ServiceMeshSpec{})
			c.Revisions = []Revision{{Name: "default-1-30-4", Version: resolve("1.30")},
				{Name: "default-1-31-0", Version: resolve("1.31"), Tags: []string{"default", "prod"}}}
			c.DefaultRevision = "default-1-31-0"
			return c
		}(),
		"gateways-1.31": base("1.31", gatewaysSpec()),
		"gateways-1.30": base("1.30", gatewaysSpec()),
		"gateways-revision-based-1.31": func() Config {
			c := base("1.31", gatewaysSpec())
			c.Revisions = []Revision{{Name: "default-1-30-4", Version: resolve("1.30"), Tags: []string{"default"}},
				{Name: "default-1-31-0", Version: resolve("1.31")}}
			c.DefaultRevision = "default-1-30-4"
			return c
		}(),
		"cni-openshift-1.31": base("1.31", meshv1.ServiceMeshSpec{Platform: "openshift",
			CNI: &meshv1.CNI{Enabled: ptr.To(true), Namespace: "istio-cni"}}),
		"ambient-1.31": base("1.31", meshv1.ServiceMeshSpec{Profile: "ambient",
			Security:   &meshv1.Security{TrustDomain: "prod.example.com"},
			MeshConfig: raw(t, `{"defaultConfig":{"proxyMetadata":{"ISTIO_META_DNS_CAPTURE":"true"}}}`),
			Values:     raw(t, `{"global":{"logAsJson":true}}`)}),
		"ambient-1.30": base("1.30", meshv1.ServiceMeshSpec{Profile: "ambient"}),
		"demo-addons-1.31": base("1.31", meshv1.ServiceMeshSpec{Profile: "demo", Addons: &meshv1.Addons{
			Prometheus: &meshv1.PrometheusAddon{Retention: "24h",
				Storage: &meshv1.AddonStorage{Size: resource.MustParse("20Gi")}}}}),
		"custom-values-1.31": base("1.31", meshv1.ServiceMeshSpec{
			ControlPlane: &meshv1.ControlPlane{Replicas: ptr.To[int32](3), LogLevel: "warn",
				PodDisruptionBudget: &meshv1.PodDisruptionBudget{Enabled: true},
				NodeSelector:        map[string]string{"kubernetes.io/os": "linux"}},
			MeshConfig: raw(t, `{"accessLogFile":"/dev/stdout"}`),
			Values:     raw(t, `{"pilot":{"env":{"PILOT_ENABLE_STATUS":"true"}}}`),
		}),
	}
}

// gatewaysSpec has an ingress gateway with every typed field and an egress gateway with the defaults.
func gatewaysSpec() meshv1.ServiceMeshSpec {
	return meshv1.ServiceMeshSpec{Gateways: []meshv1.Gateway{
		{Name: "istio-ingressgateway", Namespace: "istio-ingress", Type: meshv1.GatewayIngress,
			Service: &meshv1.GatewayService{Type: "LoadBalancer",
				Ports:                    []meshv1.GatewayPort{{Name: "http2", Port: 80, TargetPort: 8080}, {Name: "https", Port: 443, TargetPort: 8443}},
				Annotations:              map[string]string{"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"},
				LoadBalancerSourceRanges: []string{"10.0.0.0/8"}, ExternalTrafficPolicy: "Local"},
			Autoscaling:  &meshv1.Autoscaling{MinReplicas: 2, MaxReplicas: 6},
			NodeSelector: map[string]string{"node-role.kubernetes.io/edge": ""},
			Tolerations:  []corev1.Toleration{{Key: "edge", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
			Values:       &apiextensionsv1.JSON{Raw: []byte(`{"podAnnotations":{"example.com/team":"edge"}}`)}},
		{Name: "istio-egressgateway", Namespace: "istio-system", Type: meshv1.GatewayEgress, Replicas: ptr.To[int32](2)},
	}}
}

func TestRenderMatchesGoldenFiles(t *testing.T) {
	for name, cfg := range scenarios(t) {
		t.Run(name, func(t *testing.T) {
			objs, err := Render(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			var crds []string
			for _, o := range objs {
				if o.GetKind() == "CustomResourceDefinition" {
					crds = append(crds, o.GetName())
					continue
				}
				data, err := yaml.Marshal(summarize(o).Object)
				if err != nil {
					t.Fatal(err)
				}
				buf.WriteString("---\n")
				buf.Write(data)
			}
			got := []byte("# CRDs (not shown): " + strings.Join(crds, ", ") + "\n" + buf.String())
			path := filepath.Join("testdata", name+".yaml")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run `go test ./internal/render -update` to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("render differs from %s; review the change and run `go test ./internal/render -update`", path)
			}
		})
	}
}

// summarize keeps a golden file about what Meshwright decides: ConfigMaps that carry Istio's own templates and
// default values verbatim (the injector templates, the values dump) are reduced to a digest per key, so that the
// golden files show a change without holding a copy of Istio's text.
func summarize(o *unstructured.Unstructured) *unstructured.Unstructured {
	if o.GetKind() != "ConfigMap" || (!strings.HasPrefix(o.GetName(), "istio-sidecar-injector") && !strings.HasPrefix(o.GetName(), "values")) {
		return o
	}
	c := o.DeepCopy()
	data, _, _ := unstructured.NestedStringMap(c.Object, "data")
	for k, v := range data {
		sum := sha256.Sum256([]byte(v))
		data[k] = fmt.Sprintf("sha256:%x (%d bytes)", sum[:8], len(v))
	}
	_ = unstructured.SetNestedStringMap(c.Object, data, "data")
	return c
}

func TestRenderedObjectsAreLabelledAndUseCatalogImages(t *testing.T) {
	for name, cfg := range scenarios(t) {
		t.Run(name, func(t *testing.T) {
			objs, err := Render(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range objs {
				l := o.GetLabels()
				if l[LabelOwner] != "default" || l[LabelManagedBy] != ManagedBy || l[LabelComponent] == "" {
					t.Errorf("%s %s has labels %v, want the owner, managed-by and component labels", o.GetKind(), o.GetName(), l)
				}
				data, _ := yaml.Marshal(o.Object)
				for _, forbidden := range []string{"registry.istio.io/testing", ":latest"} {
					if bytes.Contains(data, []byte(forbidden)) {
						t.Errorf("%s %s references the chart's test image default %q", o.GetKind(), o.GetName(), forbidden)
					}
				}
			}
		})
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	cfg := scenarios(t)["custom-values-1.31"]
	first, err := Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := yaml.Marshal(first)
	b, _ := yaml.Marshal(second)
	if !bytes.Equal(a, b) {
		t.Error("two renders of the same Config differ")
	}
	if cfg.Hash() != scenarios(t)["custom-values-1.31"].Hash() {
		t.Error("equal Configs hash differently")
	}
}

func TestRenderRejectsValuesTheChartsRefuse(t *testing.T) {
	cfg := scenarios(t)["default-1.31"]
	cfg.Spec.Values = raw(t, `{"defaults":{"hub":"x"}}`)
	if _, err := Render(cfg); err == nil || !strings.Contains(err.Error(), "defaults") {
		t.Errorf("want the chart's error about the defaults prefix, got %v", err)
	}
}

func TestCacheRendersOncePerConfig(t *testing.T) {
	c := NewCache(2, nil)
	cfg := scenarios(t)["minimal-1.31"]
	for range 3 {
		if _, err := c.Render(cfg); err != nil {
			t.Fatal(err)
		}
	}
	if c.Renders() != 1 {
		t.Errorf("%d renders for one Config, want 1", c.Renders())
	}
	other := cfg
	other.Spec.Profile = "demo"
	if _, err := c.Render(other); err != nil {
		t.Fatal(err)
	}
	if c.Renders() != 2 {
		t.Errorf("%d renders after a changed Config, want 2", c.Renders())
	}
}

func TestWarmRenderServesTheFirstOwnedRenderOfItsConfig(t *testing.T) {
	cfg := scenarios(t)["default-1.31"]
	cfg.Owner = &metav1.OwnerReference{APIVersion: "mesh.meshwright.dev/v1alpha1", Kind: "ServiceMesh", Name: cfg.MeshName,
		UID: "1d0c3b62-5d55-4e5e-9d0e-2f6f8c7a1b01", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}
	finish := func(objs []*unstructured.Unstructured) error {
		for _, o := range objs {
			o.SetAnnotations(map[string]string{"finished": "yes"})
		}
		return nil
	}
	c := NewCache(2, finish)
	if err := c.Warm(cfg); err != nil {
		t.Fatal(err)
	}
	got, err := c.Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c.WarmHits() != 1 || c.Renders() != 0 {
		t.Fatalf("warm hits %d, renders %d; want the warm render copied, nothing rendered", c.WarmHits(), c.Renders())
	}
	want, err := Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := finish(want); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d objects from the warm render, %d from a fresh one", len(got), len(want))
	}
	for i := range want {
		if !equality.Semantic.DeepEqual(got[i].Object, want[i].Object) {
			t.Errorf("object %d (%s %s) differs from a fresh render", i, want[i].GetKind(), want[i].GetName())
		}
	}

	// Another owner (a second mesh of the same spec) gets a copy of its own; another Config renders.
	second := cfg
	second.Owner = &metav1.OwnerReference{APIVersion: cfg.Owner.APIVersion, Kind: "ServiceMesh", Name: cfg.MeshName, UID: "other"}
	again, err := c.Render(second)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range again {
		if refs := o.GetOwnerReferences(); len(refs) == 1 && refs[0].UID != "other" {
			t.Fatalf("%s %s owned by %s, want the second owner", o.GetKind(), o.GetName(), refs[0].UID)
		}
	}
	other := cfg
	other.Spec.Profile = "demo"
	if _, err := c.Render(other); err != nil {
		t.Fatal(err)
	}
	if c.WarmHits() != 2 || c.Renders() != 1 {
		t.Errorf("warm hits %d, renders %d; want 2 and 1", c.WarmHits(), c.Renders())
	}
}

func TestARenderOfTheConfigBeingWarmedWaitsForTheWarmRender(t *testing.T) {
	cfg := scenarios(t)["default-1.31"]
	c := NewCache(2, nil)
	c.WarmInBackground(cfg)
	cfg.Owner = &metav1.OwnerReference{APIVersion: "mesh.meshwright.dev/v1alpha1", Kind: "ServiceMesh", Name: cfg.MeshName, UID: "u1"}
	if _, err := c.Render(cfg); err != nil {
		t.Fatal(err)
	}
	if c.WarmHits() != 1 || c.Renders() != 0 {
		t.Errorf("warm hits %d, renders %d; want the render in progress waited for and used", c.WarmHits(), c.Renders())
	}
}

func TestWarmedClosesOnceTheWarmRenderIsDone(t *testing.T) {
	c := NewCache(2, nil)
	select {
	case <-c.Warmed():
	default:
		t.Fatal("Warmed is open although no warm render was started")
	}
	cfg := scenarios(t)["minimal-1.31"]
	c.WarmInBackground(cfg)
	<-c.Warmed()
	// Done means made: the render of its Config is served from it.
	if _, err := c.Render(cfg); err != nil {
		t.Fatal(err)
	}
	if c.WarmHits() != 1 || c.Renders() != 0 {
		t.Fatalf("warm hits %d, renders %d after Warmed closed; want the warm render used", c.WarmHits(), c.Renders())
	}
}
