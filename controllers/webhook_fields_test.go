package controllers

import (
	"context"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshwright/meshwright/internal/render"
)

// istiod patches its webhooks at run time: it injects its CA bundle and, once its endpoint serves, switches the
// validating webhooks from failurePolicy Ignore to Fail. Meshwright must not revert either, or the two would fight.
func TestIstiodOwnedWebhookFieldsAreNotReverted(t *testing.T) {
	ctx := context.Background()
	mesh := installReady(t, "webhooks")
	caBundle := []byte("-----BEGIN CERTIFICATE-----\nistiod-ca\n-----END CERTIFICATE-----\n")

	validator := &admissionv1.ValidatingWebhookConfiguration{}
	key := client.ObjectKey{Name: "istio-validator-" + mesh.Spec.Namespace}
	if err := k8sClient.Get(ctx, key, validator); err != nil {
		t.Fatal(err)
	}
	if got := *validator.Webhooks[0].FailurePolicy; got != admissionv1.Ignore {
		t.Fatalf("validator created with failurePolicy %s, want Ignore until istiod serves", got)
	}
	patch := client.MergeFrom(validator.DeepCopy())
	fail := admissionv1.Fail
	validator.Webhooks[0].FailurePolicy = &fail
	validator.Webhooks[0].ClientConfig.CABundle = caBundle
	if err := k8sClient.Patch(ctx, validator, patch, client.FieldOwner("pilot-discovery")); err != nil {
		t.Fatal(err)
	}

	injectors := &admissionv1.MutatingWebhookConfigurationList{}
	if err := k8sClient.List(ctx, injectors, client.MatchingLabels{render.LabelOwner: mesh.Name}); err != nil || len(injectors.Items) != 1 {
		t.Fatalf("want one injection webhook configuration, got %d (err %v)", len(injectors.Items), err)
	}
	injector := &injectors.Items[0]
	patch = client.MergeFrom(injector.DeepCopy())
	for i := range injector.Webhooks {
		injector.Webhooks[i].ClientConfig.CABundle = caBundle
	}
	if err := k8sClient.Patch(ctx, injector, patch, client.FieldOwner("pilot-discovery")); err != nil {
		t.Fatal(err)
	}

	writesBefore := writes.Writes()
	reconcileAfter(t, func() { poke(t, mesh) })
	reconcileAfter(t, func() { poke(t, mesh) })

	if err := k8sClient.Get(ctx, key, validator); err != nil {
		t.Fatal(err)
	}
	if got := *validator.Webhooks[0].FailurePolicy; got != admissionv1.Fail {
		t.Errorf("validator failurePolicy reverted to %s", got)
	}
	if string(validator.Webhooks[0].ClientConfig.CABundle) != string(caBundle) {
		t.Errorf("validator caBundle reverted")
	}
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(injector), injector); err != nil {
		t.Fatal(err)
	}
	for _, h := range injector.Webhooks {
		if string(h.ClientConfig.CABundle) != string(caBundle) {
			t.Errorf("injector webhook %s caBundle reverted", h.Name)
		}
	}
	// One apply is allowed: Meshwright stops asserting failurePolicy once istiod took it over. After that, none.
	if got := writes.Writes() - writesBefore; got > 1 {
		t.Errorf("%d writes after istiod patched its webhooks, want at most 1 (releasing failurePolicy): %v", got, writes.Log())
	}
	writesBefore = writes.Writes()
	reconcileAfter(t, func() { poke(t, mesh) })
	if got := writes.Writes() - writesBefore; got != 0 {
		t.Errorf("%d writes in the steady state after istiod took over its fields, want 0: %v", got, writes.Log())
	}
}
