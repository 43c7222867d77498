package controllers

import (
	"fmt"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/discovery"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/apply"
	"github.com/meshwright/meshwright/internal/istio"
	"github.com/meshwright/meshwright/internal/render"
)

// CacheOptions keeps the operator light: informers hold only objects labelled as Meshwright's (the ServiceMesh
// objects themselves excepted), not every ConfigMap, Service and ClusterRole of the cluster.
func CacheOptions() cache.Options {
	return cache.Options{
		DefaultLabelSelector: labels.SelectorFromSet(labels.Set{render.LabelManagedBy: render.ManagedBy}),
		ByObject: map[client.Object]cache.ByObject{
			&meshv1.ServiceMesh{}: {Label: labels.Everything()},
		},
	}
}

// ClientOptions makes unstructured reads come from the cache too, since rendered objects are handled unstructured.
func ClientOptions() client.Options {
	return client.Options{Cache: &client.CacheOptions{Unstructured: true}}
}

// NewServiceMeshReconciler builds the reconciler for a manager, asking the API server for its version once.
func NewServiceMeshReconciler(mgr ctrl.Manager) (*ServiceMeshReconciler, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(mgr.GetConfig())
	if err != nil {
		return nil, err
	}
	v, err := dc.ServerVersion()
	if err != nil {
		return nil, fmt.Errorf("reading the Kubernetes version: %w", err)
	}
	now, err := clockFromEnv()
	if err != nil {
		return nil, err
	}
	r := &ServiceMeshReconciler{
		Client:      mgr.GetClient(),
		APIReader:   mgr.GetAPIReader(),
		Recorder:    mgr.GetEventRecorder("meshwright"),
		Renders:     render.NewCache(8, apply.StampHashes),
		KubeVersion: v.GitVersion,
		Now:         now,
	}
	r.SetCatalog(istio.DefaultCatalog)
	go warmCharts(istio.DefaultCatalog)
	return r, nil
}

// warmCharts loads, while the manager starts, the charts a default ServiceMesh renders first (the newest version's
// base and istiod), so a first install does not wait for them to be read and parsed. Other versions and charts are
// loaded when first used.
func warmCharts(c *istio.Catalog) {
	if len(c.Versions) == 0 {
		return
	}
	for _, chart := range []string{istio.ChartBase, istio.ChartIstiod} {
		_, _ = istio.LoadChart(c.Versions[0], chart) // an error here is reported by the render that needs the chart
	}
}
