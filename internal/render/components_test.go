package render

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
)

func find(objs []*unstructured.Unstructured, kind, namespace, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetNamespace() == namespace && o.GetName() == name {
			return o
		}
	}
	return nil
}

func TestGatewayValuesAreCheckedAtEveryDepth(t *testing.T) {
	for _, tc := range []struct {
		name, values, wantPath string
	}{
		{"a misspelt key one level down names the key", `{"service":{"typ":"NodePort"}}`, "spec.gateways[0].values.service.typ"},
		{"a misspelt top-level key names the key", `{"replicaCunt":2}`, "spec.gateways[0].values.replicaCunt"},
		{"a key three levels down names the key", `{"autoscaling":{"enabled":true},"networkGatewayPorts":{"tls":{"port":15443,"prot":1}}}`, "spec.gateways[0].values.networkGatewayPorts.tls.prot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := scenarios(t)["gateways-1.31"]
			cfg.Spec.Gateways = cfg.Spec.Gateways[:1]
			cfg.Spec.Gateways[0].Values = raw(t, tc.values)
			_, err := Render(cfg)
			var unknown *UnknownValueError
			if !errors.As(err, &unknown) || unknown.Path != tc.wantPath || !strings.Contains(err.Error(), "gateway chart") {
				t.Fatalf("Render() error = %v; want an UnknownValueError for %s", err, tc.wantPath)
			}
		})
	}
	for _, tc := range []struct{ name, values string }{
		{"free-form maps accept any key", `{"labels":{"team":"edge"},"podAnnotations":{"a":"b"},"env":{"X":"1"},"service":{"annotations":{"k":"v"}}}`},
		{"global is accepted", `{"global":{"logAsJson":true}}`},
		{"a key whose default is empty takes any value", `{"strategy":{"rollingUpdate":{"maxSurge":2}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := scenarios(t)["gateways-1.31"]
			cfg.Spec.Gateways[0].Values = raw(t, tc.values)
			if _, err := Render(cfg); err != nil {
				t.Fatalf("Render() = %v; want the values accepted", err)
			}
		})
	}
}

func TestCNIValuesAreCheckedAtEveryDepth(t *testing.T) {
	cfg := scenarios(t)["cni-openshift-1.31"]
	cfg.Spec.CNI.Values = raw(t, `{"ambient":{"enabeld":true}}`)
	var unknown *UnknownValueError
	if _, err := Render(cfg); !errors.As(err, &unknown) || unknown.Path != "spec.cni.values.ambient.enabeld" {
		t.Fatalf("Render() error = %v; want spec.cni.values.ambient.enabeld named", err)
	}
}

func TestGatewaysFollowTheRevisionTheTagsPointAt(t *testing.T) {
	cfg := scenarios(t)["gateways-revision-based-1.31"]
	for _, target := range []string{"default-1-30-4", "default-1-31-0"} {
		cfg.DefaultRevision = target
		objs, err := Render(cfg)
		if err != nil {
			t.Fatal(err)
		}
		dep := find(objs, "Deployment", "istio-ingress", "istio-ingressgateway")
		rev, _, _ := unstructured.NestedString(dep.Object, "spec", "template", "metadata", "labels", "istio.io/rev")
		if rev != target {
			t.Errorf("with the tags on %s the gateway's pods select revision %q", target, rev)
		}
		maxUnavailable, _, _ := unstructured.NestedInt64(dep.Object, "spec", "strategy", "rollingUpdate", "maxUnavailable")
		if maxUnavailable != 0 {
			t.Errorf("gateway strategy maxUnavailable = %d; a move between revisions must never lose a ready replica", maxUnavailable)
		}
	}
}

func TestGatewayTypesAndScaling(t *testing.T) {
	objs, err := Render(scenarios(t)["gateways-1.31"])
	if err != nil {
		t.Fatal(err)
	}
	egress := find(objs, "Service", "istio-system", "istio-egressgateway")
	if typ, _, _ := unstructured.NestedString(egress.Object, "spec", "type"); typ != "ClusterIP" {
		t.Errorf("egress Service type = %q, want ClusterIP", typ)
	}
	ingress := find(objs, "Service", "istio-ingress", "istio-ingressgateway")
	if typ, _, _ := unstructured.NestedString(ingress.Object, "spec", "type"); typ != "LoadBalancer" {
		t.Errorf("ingress Service type = %q, want LoadBalancer", typ)
	}
	if _, found, _ := unstructured.NestedFieldNoCopy(find(objs, "Deployment", "istio-ingress", "istio-ingressgateway").Object, "spec", "replicas"); found {
		t.Error("an autoscaled gateway's Deployment sets replicas; every scaling by the autoscaler would be undone")
	}
	if find(objs, "HorizontalPodAutoscaler", "istio-ingress", "istio-ingressgateway") == nil {
		t.Error("the autoscaled gateway has no HorizontalPodAutoscaler")
	}
	if r, _, _ := unstructured.NestedInt64(find(objs, "Deployment", "istio-system", "istio-egressgateway").Object, "spec", "replicas"); r != 2 {
		t.Errorf("egress replicas = %d, want 2", r)
	}
	if find(objs, "HorizontalPodAutoscaler", "istio-system", "istio-egressgateway") != nil {
		t.Error("a gateway with fixed replicas got an autoscaler")
	}
	if find(objs, "PodDisruptionBudget", "istio-system", "istio-egressgateway") == nil {
		t.Error("the two-replica egress gateway has no PodDisruptionBudget")
	}
	ns := find(objs, "Namespace", "", "istio-ingress")
	if ns == nil || ns.GetLabels()[LabelComponent] != ComponentGateway || len(ns.GetOwnerReferences()) != 0 {
		t.Errorf("the ingress gateway's namespace is rendered as %v; want it labelled and without owner (it outlives the mesh)", ns)
	}
	for _, o := range objs {
		if o.GetLabels()[LabelComponent] == ComponentGateway && o.GetKind() != "Namespace" && o.GetLabels()[LabelGateway] == "" {
			t.Errorf("%s %s/%s of a gateway does not say which gateway", o.GetKind(), o.GetNamespace(), o.GetName())
		}
	}
}

func TestAmbientRendersCNIAndZtunnelInSyncWithIstiod(t *testing.T) {
	cfg := scenarios(t)["ambient-1.31"]
	objs, err := Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cni := find(objs, "DaemonSet", "kube-system", "istio-cni-node")
	zt := find(objs, "DaemonSet", "istio-system", "ztunnel")
	if cni == nil || zt == nil {
		t.Fatalf("ambient renders CNI %v and ztunnel %v; want both", cni != nil, zt != nil)
	}
	for _, o := range []*unstructured.Unstructured{cni, zt} {
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		image, _, _ := unstructured.NestedString(containers[0].(map[string]any), "image")
		if !strings.HasPrefix(image, "docker.io/istio/") || !strings.Contains(image, ":"+cfg.Version.Version) {
			t.Errorf("%s runs %s; want the catalog's image of Istio %s", o.GetName(), image, cfg.Version.Version)
		}
	}
	cm := find(objs, "ConfigMap", "kube-system", "istio-cni-config")
	if cm == nil || !strings.Contains(cm.Object["data"].(map[string]any)["AMBIENT_ENABLED"].(string), "true") {
		t.Errorf("the CNI agent is not configured for ambient: %v", cm)
	}
	if !strings.Contains(toText(zt.Object), "ISTIO_META_DNS_CAPTURE") {
		t.Error("ztunnel does not get the proxy metadata of the mesh's meshConfig")
	}
	if !strings.Contains(toText(zt.Object), "prod.example.com") && !strings.Contains(toText(find(objs, "ConfigMap", "istio-system", "istio").Object), "prod.example.com") {
		t.Error("the mesh's trust domain is not rendered")
	}
	istiod := find(objs, "Deployment", "istio-system", "istiod")
	if !strings.Contains(toText(istiod.Object), "PILOT_ENABLE_AMBIENT") {
		t.Error("istiod is not rendered with ambient enabled")
	}

	cfg.Spec.Profile = ""
	cfg.Spec.CNI = &meshv1.CNI{Enabled: ptr.To(true)}
	objs, err = Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if find(objs, "DaemonSet", "istio-system", "ztunnel") != nil {
		t.Error("a sidecar mesh with CNI renders ztunnel")
	}
	inj := find(objs, "ConfigMap", "istio-system", "istio-sidecar-injector")
	values := map[string]any{}
	if err := json.Unmarshal([]byte(inj.Object["data"].(map[string]any)["values"].(string)), &values); err != nil {
		t.Fatal(err)
	}
	if enabled, _, _ := unstructured.NestedBool(values, "pilot", "cni", "enabled"); !enabled {
		t.Error("the injector is not told that CNI is on: it would still add the privileged init container")
	}
}

func toText(v any) string {
	b, _ := yaml.Marshal(v)
	return string(b)
}
