package fakeistiod

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/klog/v2"
)

var gatewayClasses = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gatewayclasses"}

// istioGatewayClasses are the classes istiod's gateway controller accepts.
var istioGatewayClasses = []string{"istio", "istio-waypoint"}

// controllerNames are the controllers istiod names on the GatewayClasses it creates.
var controllerNames = map[string]string{"istio": "istio.io/gateway-controller", "istio-waypoint": "istio.io/mesh-controller"}

// acceptGatewayClasses creates Istio's GatewayClasses and marks them Accepted, as istiod's gateway controller does, every few seconds
// until ctx ends. Nothing happens while the Gateway API is not served.
func acceptGatewayClasses(ctx context.Context, disc discovery.DiscoveryInterface, dyn dynamic.Interface, log klog.Logger) {
	tick := time.NewTicker(3 * time.Second)
	defer tick.Stop()
	for {
		if served(disc) {
			for _, name := range istioGatewayClasses {
				if err := acceptGatewayClass(ctx, dyn, name); err != nil && ctx.Err() == nil {
					log.Error(err, "Accepting the GatewayClass", "GatewayClass", name)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func served(disc discovery.DiscoveryInterface) bool {
	list, err := disc.ServerResourcesForGroupVersion(gatewayClasses.GroupVersion().String())
	if err != nil {
		return false
	}
	for _, r := range list.APIResources {
		if r.Name == gatewayClasses.Resource {
			return true
		}
	}
	return false
}

func acceptGatewayClass(ctx context.Context, dyn dynamic.Interface, name string) error {
	live, err := dyn.Resource(gatewayClasses).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		// istiod creates its GatewayClasses once the Gateway API is served.
		live, err = dyn.Resource(gatewayClasses).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": gatewayClasses.GroupVersion().String(),
			"kind":       "GatewayClass",
			"metadata":   map[string]any{"name": name},
			"spec":       map[string]any{"controllerName": controllerNames[name]},
		}}, metav1.CreateOptions{FieldManager: FieldManager})
	}
	if err != nil {
		return fmt.Errorf("getting GatewayClass %s: %w", name, err)
	}
	conds, _, _ := unstructured.NestedSlice(live.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		gen, _ := m["observedGeneration"].(int64)
		if m["type"] == "Accepted" && m["status"] == "True" && gen == live.GetGeneration() {
			return nil
		}
	}
	status := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": gatewayClasses.GroupVersion().String(),
		"kind":       "GatewayClass",
		"metadata":   map[string]any{"name": name},
		"status": map[string]any{"conditions": []any{map[string]any{
			"type":               "Accepted",
			"status":             "True",
			"reason":             "Accepted",
			"message":            "Handled by fakeistiod",
			"observedGeneration": live.GetGeneration(),
			"lastTransitionTime": time.Now().UTC().Format(time.RFC3339),
		}}},
	}}
	if _, err := dyn.Resource(gatewayClasses).ApplyStatus(ctx, name, status, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
		return fmt.Errorf("applying the status of GatewayClass %s: %w", name, err)
	}
	return nil
}
