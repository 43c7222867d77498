package render

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
)

func addonsScenario(t *testing.T, addons *meshv1.Addons) Config {
	cfg := scenarios(t)["default-1.31"]
	cfg.Spec.Addons = addons
	return cfg
}

func TestTheDemoProfileTurnsOnEveryAddon(t *testing.T) {
	objs, err := Render(scenarios(t)["demo-addons-1.31"])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{ComponentPrometheus, ComponentGrafana, ComponentTracing, ComponentKiali} {
		if find(objs, "Deployment", "istio-system", name) == nil {
			t.Errorf("the demo profile renders no %s Deployment", name)
		}
	}
	objs, err = Render(scenarios(t)["default-1.31"])
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if c := o.GetLabels()[LabelComponent]; isAddon(c) {
			t.Errorf("the default profile renders add-on object %s %s", o.GetKind(), o.GetName())
		}
	}
}

func isAddon(c string) bool {
	return c == ComponentPrometheus || c == ComponentGrafana || c == ComponentTracing || c == ComponentKiali
}

// Every add-on pod passes the Pod Security Standard "restricted", as the API server's admission would judge it.
func TestAddonPodsAreRestricted(t *testing.T) {
	objs, err := Render(scenarios(t)["demo-addons-1.31"])
	if err != nil {
		t.Fatal(err)
	}
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, o := range objs {
		if o.GetKind() != "Deployment" || !isAddon(o.GetLabels()[LabelComponent]) {
			continue
		}
		dep := &appsv1.Deployment{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, dep); err != nil {
			t.Fatal(err)
		}
		checked++
		for _, r := range evaluator.EvaluatePod(psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()},
			&dep.Spec.Template.ObjectMeta, &dep.Spec.Template.Spec) {
			if !r.Allowed {
				t.Errorf("%s is not restricted: %s: %s", dep.Name, r.ForbiddenReason, r.ForbiddenDetail)
			}
		}
	}
	if checked != 4 {
		t.Errorf("checked %d add-on Deployments, want 4", checked)
	}
}

func TestTracingIsWiredIntoMeshConfigByName(t *testing.T) {
	cfg := addonsScenario(t, &meshv1.Addons{Tracing: &meshv1.TracingAddon{SamplingPercentage: "2.5"}})
	cfg.Spec.MeshConfig = raw(t, `{"extensionProviders":[{"name":"corp-otel","opentelemetry":{"service":"otel.corp","port":4317}}]}`)
	values, err := Values(cfg, cfg.active(), map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	providers, _, _ := unstructured.NestedSlice(values, "meshConfig", "extensionProviders")
	var names []string
	for _, p := range providers {
		names = append(names, p.(map[string]any)["name"].(string))
	}
	if strings.Join(names, ",") != "corp-otel,"+TracingProvider {
		t.Errorf("extension providers %v; want the user's kept and %s added", names, TracingProvider)
	}
	otel := providers[1].(map[string]any)["opentelemetry"].(map[string]any)
	if otel["service"] != "jaeger-collector.istio-system.svc.cluster.local" || otel["port"] != int64(4317) {
		t.Errorf("provider points at %v", otel)
	}
	if d, _, _ := unstructured.NestedStringSlice(values, "meshConfig", "defaultProviders", "tracing"); len(d) != 1 || d[0] != TracingProvider {
		t.Errorf("default tracing providers %v", d)
	}
	if s, _, _ := unstructured.NestedFieldNoCopy(values, "meshConfig", "defaultConfig", "tracing", "sampling"); s != 2.5 {
		t.Errorf("sampling %v, want 2.5", s)
	}

	cfg.Spec.MeshConfig = raw(t, `{"extensionProviders":[{"name":"`+TracingProvider+`","zipkin":{"service":"z","port":9411}}],"defaultProviders":{"tracing":["corp"]}}`)
	values, err = Values(cfg, cfg.active(), map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	providers, _, _ = unstructured.NestedSlice(values, "meshConfig", "extensionProviders")
	if len(providers) != 1 || providers[0].(map[string]any)["zipkin"] == nil {
		t.Errorf("a provider of the user's with Meshwright's name was replaced: %v", providers)
	}
	if d, _, _ := unstructured.NestedStringSlice(values, "meshConfig", "defaultProviders", "tracing"); len(d) != 1 || d[0] != "corp" {
		t.Errorf("the user's default tracing providers were replaced: %v", d)
	}

	cfg = addonsScenario(t, &meshv1.Addons{Tracing: &meshv1.TracingAddon{Addon: meshv1.Addon{Mode: meshv1.AddonExternal, URL: "http://jaeger.obs:16686"},
		OTLPEndpoint: "otel-collector.obs:4317"}})
	values, err = Values(cfg, cfg.active(), map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	providers, _, _ = unstructured.NestedSlice(values, "meshConfig", "extensionProviders")
	if otel := providers[0].(map[string]any)["opentelemetry"].(map[string]any); otel["service"] != "otel-collector.obs" || otel["port"] != int64(4317) {
		t.Errorf("External tracing provider points at %v", otel)
	}
}

// A configuration change rolls the add-on: the pod template carries the configuration's hash.
func TestAddonConfigChangeRollsThePod(t *testing.T) {
	hash := func(cfg Config) string {
		objs, err := Render(cfg)
		if err != nil {
			t.Fatal(err)
		}
		dep := find(objs, "Deployment", "istio-system", ComponentPrometheus)
		h, _, _ := unstructured.NestedString(dep.Object, "spec", "template", "metadata", "annotations", AnnotationConfigHash)
		return h
	}
	sidecars := addonsScenario(t, &meshv1.Addons{Prometheus: &meshv1.PrometheusAddon{}})
	ambient := sidecars
	ambient.Spec.Profile = meshv1.ProfileAmbient
	if a, b := hash(sidecars), hash(ambient); a == "" || a == b {
		t.Errorf("config hash %q with sidecars, %q with ztunnel to scrape; want different", a, b)
	}
}

// Kiali follows the revision the tags point at and the URLs of the other add-ons, whatever their mode.
func TestKialiIsConfiguredForTheActiveRevisionAndTheOtherAddons(t *testing.T) {
	cfg := scenarios(t)["revisions-1.30-and-1.31-tags-on-1.31"]
	cfg.Spec.Addons = &meshv1.Addons{Kiali: &meshv1.KialiAddon{},
		Prometheus: &meshv1.PrometheusAddon{Addon: meshv1.Addon{Mode: meshv1.AddonExternal, URL: "http://prom.obs:9090"}}}
	objs, err := Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cm := find(objs, "ConfigMap", "istio-system", "kiali")
	text := cm.Object["data"].(map[string]any)["config.yaml"].(string)
	for _, want := range []string{"istiod-default-1-31-0", "istio-sidecar-injector-default-1-31-0", "http://prom.obs:9090", "view_only_mode: true", "strategy: anonymous"} {
		if !strings.Contains(text, want) {
			t.Errorf("Kiali's configuration lacks %q:\n%s", want, text)
		}
	}
	if find(objs, "Deployment", "istio-system", ComponentPrometheus) != nil {
		t.Error("an External Prometheus is rendered")
	}
}
