package fakeistiod

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	admissionv1ac "k8s.io/client-go/applyconfigurations/admissionregistration/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// injectorSelector selects the sidecar-injector MutatingWebhookConfigurations of Istio's istiod chart (one per
// revision, plus the revision-tag ones), whatever their names.
const injectorSelector = "app=sidecar-injector"

// serviceRef is a webhook's clientConfig.service, with the port defaulted as the API server does.
type serviceRef struct {
	namespace, name string
	port            int32
}

// hookTable maps the services the injector webhooks call to the revision whose pods they inject.
type hookTable struct {
	mu    sync.RWMutex
	byMWC map[string]map[serviceRef]string
}

func newHookTable() *hookTable { return &hookTable{byMWC: map[string]map[serviceRef]string{}} }

func (h *hookTable) set(mwc string, refs map[serviceRef]string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(refs) == 0 {
		delete(h.byMWC, mwc)
		return
	}
	h.byMWC[mwc] = refs
}

// services returns every referenced service with its revision.
func (h *hookTable) services() map[serviceRef]string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := map[serviceRef]string{}
	for _, refs := range h.byMWC {
		for ref, rev := range refs {
			out[ref] = rev
		}
	}
	return out
}

// revisionOf is the revision an injector webhook configuration serves: its istio.io/rev label (the chart sets it on
// revision and tag configurations alike), else the one its service name carries (istiod-<rev>; istiod is "default").
func revisionOf(mwc *admissionv1.MutatingWebhookConfiguration, svc string) string {
	if rev := mwc.Labels["istio.io/rev"]; rev != "" {
		return rev
	}
	if rev, ok := strings.CutPrefix(svc, "istiod-"); ok && rev != "" {
		return rev
	}
	return "default"
}

func serviceRefs(mwc *admissionv1.MutatingWebhookConfiguration) map[serviceRef]string {
	refs := map[serviceRef]string{}
	for _, wh := range mwc.Webhooks {
		svc := wh.ClientConfig.Service
		if svc == nil {
			continue
		}
		port := int32(443)
		if svc.Port != nil {
			port = *svc.Port
		}
		refs[serviceRef{namespace: svc.Namespace, name: svc.Name, port: port}] = revisionOf(mwc, svc.Name)
	}
	return refs
}

// watchInjectors keeps hooks current and every injector webhook's caBundle set to ca's, until ctx ends. It returns
// once the webhooks that exist now have been handled, and run, which returns when ctx ends.
func watchInjectors(ctx context.Context, kube kubernetes.Interface, ca *authority, hooks *hookTable, log klog.Logger) (run func(), err error) {
	factory := informers.NewSharedInformerFactoryWithOptions(kube, 30*time.Second,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = injectorSelector }))
	inf := factory.Admissionregistration().V1().MutatingWebhookConfigurations().Informer()
	onChange := func(obj any) {
		mwc, ok := obj.(*admissionv1.MutatingWebhookConfiguration)
		if !ok {
			return
		}
		hooks.set(mwc.Name, serviceRefs(mwc))
		if err := patchCABundle(ctx, kube, mwc, ca.bundle()); err != nil {
			log.Error(err, "Patching the caBundle; retried at the next resync", "MutatingWebhookConfiguration", klog.KObj(mwc))
		}
	}
	reg, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    onChange,
		UpdateFunc: func(_, obj any) { onChange(obj) },
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if mwc, ok := obj.(*admissionv1.MutatingWebhookConfiguration); ok {
				hooks.set(mwc.Name, nil)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("watching MutatingWebhookConfigurations: %w", err)
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), reg.HasSynced) {
		factory.Shutdown()
		return nil, fmt.Errorf("listing MutatingWebhookConfigurations %s: %w", injectorSelector, context.Cause(ctx))
	}
	return func() {
		<-ctx.Done()
		factory.Shutdown()
	}, nil
}

// patchCABundle sets caBundle on the service webhooks that lack ca, with server-side apply under FieldManager, so the
// configuration's owner (Meshwright leaves caBundle to istiod) keeps every other field. Only existing webhooks are
// named: applying a name the live object lacks would add an incomplete webhook.
func patchCABundle(ctx context.Context, kube kubernetes.Interface, mwc *admissionv1.MutatingWebhookConfiguration, ca []byte) error {
	apply := admissionv1ac.MutatingWebhookConfiguration(mwc.Name)
	stale := false
	for _, wh := range mwc.Webhooks {
		if wh.ClientConfig.Service == nil {
			continue
		}
		stale = stale || !bytes.Equal(wh.ClientConfig.CABundle, ca)
		apply.WithWebhooks(admissionv1ac.MutatingWebhook().WithName(wh.Name).
			WithClientConfig(admissionv1ac.WebhookClientConfig().WithCABundle(ca...)))
	}
	if !stale {
		return nil
	}
	if _, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Apply(ctx, apply,
		metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
		return fmt.Errorf("applying the caBundle of %s: %w", mwc.Name, err)
	}
	return nil
}
