package fakeistiod

import (
	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// InjectorFixture is a MutatingWebhookConfiguration shaped like the istiod chart's sidecar injector (labels, service
// reference on port 443, path /inject, failurePolicy Fail, no caBundle) for tests that bring no chart. It selects pods
// labelled sidecar.istio.io/inject=true in podNamespace only, so it cannot touch other tests' pods. rev "" leaves the
// istio.io/rev label off, so the revision comes from the service name.
func InjectorFixture(name, istioNamespace, service, rev, podNamespace string) *admissionv1.MutatingWebhookConfiguration {
	labels := map[string]string{"app": "sidecar-injector", "app.kubernetes.io/name": "istiod"}
	if rev != "" {
		labels[RevisionLabel] = rev
	}
	return &admissionv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Webhooks: []admissionv1.MutatingWebhook{{
			Name: "object.sidecar-injector.istio.io",
			ClientConfig: admissionv1.WebhookClientConfig{Service: &admissionv1.ServiceReference{
				Namespace: istioNamespace, Name: service, Path: ptr.To("/inject"), Port: ptr.To[int32](443),
			}},
			Rules: []admissionv1.RuleWithOperations{{
				Operations: []admissionv1.OperationType{admissionv1.Create},
				Rule:       admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			FailurePolicy:           ptr.To(admissionv1.Fail),
			SideEffects:             ptr.To(admissionv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{
				"kubernetes.io/metadata.name": podNamespace,
			}},
			ObjectSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"sidecar.istio.io/inject": "true"}},
		}},
	}
}
