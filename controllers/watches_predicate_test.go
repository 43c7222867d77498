package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

func TestRenderedObjectChangedHeedsWhatTheRenderSetsAndTheRolloutsAssessed(t *testing.T) {
	configMap := func(rv string, mutate func(m map[string]any)) *unstructured.Unstructured {
		m := map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": "istio", "namespace": "istio-system", "resourceVersion": rv,
				"labels": map[string]any{"app.kubernetes.io/managed-by": "meshwright"}},
			"data": map[string]any{"mesh": "{}"},
		}
		if mutate != nil {
			mutate(m)
		}
		return &unstructured.Unstructured{Object: m}
	}
	hook := func(rv string, mutate func(h map[string]any)) *unstructured.Unstructured {
		h := map[string]any{"name": "h", "failurePolicy": "Ignore",
			"clientConfig": map[string]any{"caBundle": "AAA", "service": map[string]any{"name": "istiod"}},
			"rules":        []any{map[string]any{"operations": []any{"CREATE"}}}}
		if mutate != nil {
			mutate(h)
		}
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
			"metadata": map[string]any{"name": "v", "resourceVersion": rv}, "webhooks": []any{h}}}
	}
	deployment := func(rv string, ready int64) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": "istiod", "namespace": "istio-system", "resourceVersion": rv},
			"spec":     map[string]any{"replicas": int64(1)}, "status": map[string]any{"readyReplicas": ready}}}
	}
	cases := []struct {
		name     string
		old, new *unstructured.Unstructured
		changed  bool
	}{
		{"a ConfigMap's data", configMap("1", nil), configMap("2", func(m map[string]any) {
			m["data"] = map[string]any{"mesh": "{x: 1}"}
		}), true},
		{"a ConfigMap's label", configMap("1", nil), configMap("2", func(m map[string]any) {
			m["metadata"].(map[string]any)["labels"] = map[string]any{}
		}), true},
		{"a ConfigMap's annotation added", configMap("1", nil), configMap("2", func(m map[string]any) {
			m["metadata"].(map[string]any)["annotations"] = map[string]any{"a": "b"}
		}), true},
		{"a field the render does not know, added", configMap("1", nil), configMap("2", func(m map[string]any) { m["extra"] = "x" }), true},
		{"only the resourceVersion", configMap("1", nil), configMap("2", nil), false},
		{"a webhook's CA bundle and failure policy (istiod's own patches)", hook("1", nil), hook("2", func(h map[string]any) {
			h["failurePolicy"] = "Fail"
			h["clientConfig"].(map[string]any)["caBundle"] = "BBB"
		}), false},
		{"a webhook's rules", hook("1", nil), hook("2", func(h map[string]any) { h["rules"] = []any{} }), true},
		{"a webhook's service", hook("1", nil), hook("2", func(h map[string]any) {
			h["clientConfig"].(map[string]any)["service"] = map[string]any{"name": "other"}
		}), true},
		{"a Deployment's status (its rollout)", deployment("1", 0), deployment("2", 1), true},
		{"nothing but the resourceVersion of a Deployment", deployment("1", 1), deployment("2", 1), false},
	}
	for _, c := range cases {
		if got := (renderedObjectChanged{}).Update(event.UpdateEvent{ObjectOld: c.old, ObjectNew: c.new}); got != c.changed {
			t.Errorf("%s: changed = %v, want %v", c.name, got, c.changed)
		}
	}
}

// CRDs are watched as metadata: their spec changes with their generation, and the API server's status updates while
// it establishes them (a new resourceVersion, nothing else) wake no reconcile.
func TestCRDChangedHeedsGenerationLabelsAnnotationsAndDeletion(t *testing.T) {
	crd := func(gen int64, rv string, mutate func(m *metav1.PartialObjectMetadata)) *metav1.PartialObjectMetadata {
		m := crdMetadata()
		m.Name, m.Generation, m.ResourceVersion = "a.b", gen, rv
		m.Labels = map[string]string{"app.kubernetes.io/managed-by": "meshwright"}
		if mutate != nil {
			mutate(m)
		}
		return m
	}
	now := metav1.Now()
	cases := []struct {
		name     string
		old, new *metav1.PartialObjectMetadata
		changed  bool
	}{
		{"a status update (the API server establishing it)", crd(1, "1", nil), crd(1, "2", nil), false},
		{"its spec (a new generation)", crd(1, "1", nil), crd(2, "2", nil), true},
		{"a label", crd(1, "1", nil), crd(1, "2", func(m *metav1.PartialObjectMetadata) { m.Labels = nil }), true},
		{"an annotation", crd(1, "1", nil), crd(1, "2", func(m *metav1.PartialObjectMetadata) { m.Annotations = map[string]string{"a": "b"} }), true},
		{"its deletion", crd(1, "1", nil), crd(1, "2", func(m *metav1.PartialObjectMetadata) { m.DeletionTimestamp = &now }), true},
		{"a finalizer", crd(1, "1", nil), crd(1, "2", func(m *metav1.PartialObjectMetadata) { m.Finalizers = []string{"x"} }), true},
	}
	for _, c := range cases {
		if got := (crdChanged{}).Update(event.UpdateEvent{ObjectOld: c.old, ObjectNew: c.new}); got != c.changed {
			t.Errorf("%s: changed = %v, want %v", c.name, got, c.changed)
		}
	}
}
