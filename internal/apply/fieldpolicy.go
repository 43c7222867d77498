package apply

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// withFieldPolicy returns the configuration Meshwright applies for desired, given the live object (nil if absent).
// It leaves out the fields istiod owns at run time, so that the two never fight and Argo CD sees no drift loop:
//
//   - webhooks[].clientConfig.caBundle: istiod injects its CA bundle; Meshwright never sets it.
//   - webhooks[].failurePolicy: the chart creates validating webhooks with Ignore; istiod switches them to Fail once
//     its endpoint serves. Meshwright sets the initial value and stops asserting it once someone else changed it.
//
// desired is not modified; a copy is returned only when something is left out.
func withFieldPolicy(desired, live *unstructured.Unstructured) *unstructured.Unstructured {
	switch desired.GetKind() {
	case "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration":
	default:
		return desired
	}
	if desired.GroupVersionKind().Group != "admissionregistration.k8s.io" {
		return desired
	}
	obj := desired.DeepCopy()
	webhooks, _, _ := unstructured.NestedSlice(obj.Object, "webhooks")
	liveHooks := map[string]map[string]any{}
	if live != nil {
		lw, _, _ := unstructured.NestedSlice(live.Object, "webhooks")
		for _, h := range lw {
			if m, ok := h.(map[string]any); ok {
				name, _ := m["name"].(string)
				liveHooks[name] = m
			}
		}
	}
	for _, h := range webhooks {
		hook, ok := h.(map[string]any)
		if !ok {
			continue
		}
		unstructured.RemoveNestedField(hook, "clientConfig", "caBundle")
		name, _ := hook["name"].(string)
		if lh, ok := liveHooks[name]; ok && lh["failurePolicy"] != hook["failurePolicy"] {
			delete(hook, "failurePolicy")
		}
	}
	_ = unstructured.SetNestedSlice(obj.Object, webhooks, "webhooks")
	return obj
}
