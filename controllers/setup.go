package controllers

import (
	"context"
	"fmt"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/event"

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
		// Nothing reads managedFields from the cache (ownership is checked with the API server), and on Istio's
		// CRDs and a cluster's pods they are a good part of each object.
		DefaultTransform: cache.TransformStripManagedFields(),
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
	// Rendered objects are applied without reading the API server's answers (apply.Bodyless).
	writer, err := apply.NewBodyless(mgr.GetClient(), mgr.GetConfig(), mgr.GetHTTPClient())
	if err != nil {
		return nil, err
	}
	crdWatch, err := newCRDWatch(mgr)
	if err != nil {
		return nil, err
	}
	r := &ServiceMeshReconciler{
		crdWatch:    crdWatch,
		recheck:     make(chan event.GenericEvent, 1),
		Client:      writer,
		APIReader:   mgr.GetAPIReader(),
		Recorder:    mgr.GetEventRecorder("meshwright"),
		Renders:     render.NewCache(8, apply.StampHashes),
		KubeVersion: v.GitVersion,
		Now:         now,
	}
	r.SetCatalog(istio.DefaultCatalog)
	r.warm()
	return r, nil
}

// newCRDWatch makes the client that watches CRDs while they are established: typed, in protobuf (the API server encodes
// it and the operator decodes it several times faster than JSON), sharing the manager's connection.
func newCRDWatch(mgr ctrl.Manager) (client.WithWatch, error) {
	if err := apiutil.AddToProtobufScheme(apiextensionsv1.AddToScheme); err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return client.NewWithWatch(mgr.GetConfig(), client.Options{Scheme: scheme, Mapper: mgr.GetRESTMapper(), HTTPClient: mgr.GetHTTPClient()})
}

// warm renders, while the manager starts, what the first reconcile of a ServiceMesh "default" with an empty spec (the
// sample, and what most users apply first) will render, so that its install does not wait for Istio's charts to be
// read, parsed and executed. Other specs render when first reconciled. An error here is reported by the reconcile
// that renders the same Config.
func (r *ServiceMeshReconciler) warm() {
	began := time.Now()
	r.Renders.WarmInBackground(r.firstRenderConfig(&meshv1.ServiceMesh{ObjectMeta: metav1.ObjectMeta{Name: "default"},
		Spec: meshv1.DefaultSpec()}))
	ahead := make(chan struct{})
	specs := r.crdSpecs()
	specs.Ahead = ahead
	go func() {
		<-r.Renders.Warmed()
		// Not while the operator starts and makes a first install: the list is large, and an install meanwhile takes
		// the CRDs as they are (then applies again). Once reconciles have been quiet a moment, or a few seconds on.
		warmed := time.Now()
		for time.Since(warmed) < crdCheckLatest && !r.settle.quietFor(crdCheckQuiet, warmed) {
			time.Sleep(crdCheckQuiet / 4)
		}
		if live := r.listCRDsAhead(); live != nil {
			specs.Check(r.Renders.WarmObjects(), live)
		}
		close(ahead)
		if specs.Deferred() {
			// An Apply took CRDs as they were before the check: every mesh applies again now.
			r.recheck <- event.GenericEvent{Object: crdMetadata()}
		}
		render.ForgetPrefetched() // what the warm render did not take is not needed
		ctrl.Log.WithName("setup").V(1).Info("Rendered ahead the default ServiceMesh", "took", time.Since(began).Round(time.Microsecond).String())
	}()
}

// crdCheckQuiet and crdCheckLatest: the CRDs are checked ahead once no reconcile has run for crdCheckQuiet, or at the
// latest crdCheckLatest after the warm render.
const (
	crdCheckQuiet  = 300 * time.Millisecond
	crdCheckLatest = 3 * time.Second
)

// listCRDsAhead reads Meshwright's CRDs whole, once start-up is quiet, so that warm() records which of them hold the
// warm render's (apply.MetadataOnly.Check): the cache holds CRDs as metadata only, and an Apply would otherwise read
// each CRD an earlier mesh left from the API server, one request each. The list is served from the API server's watch
// cache; a CRD changed since is read again by the next Apply. nil when it could not be read.
func (r *ServiceMeshReconciler) listCRDsAhead() []unstructured.Unstructured {
	if r.APIReader == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), crdEstablishedWait)
	defer cancel()
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(crdListGVK)
	if err := r.APIReader.List(ctx, list, client.MatchingLabels{render.LabelManagedBy: render.ManagedBy},
		&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: "0"}}); err != nil {
		ctrl.Log.WithName("setup").V(1).Info("Reading the CRDs ahead of the first install", "error", err.Error())
		return nil
	}
	return list.Items
}

// PrefetchFirstRender starts, before anything else, the part of the warm render that needs nothing from the cluster:
// decoding the CRDs of the Istio version a default ServiceMesh resolves to (render.PrefetchCRDs), most of a render's
// CPU. The process then decodes them while it waits for the API server (discovery, the Lease); the warm render that
// NewServiceMeshReconciler starts takes them.
func PrefetchFirstRender() {
	if res, err := istio.DefaultCatalog.ResolveRunning(meshv1.DefaultSpec().Version, "", time.Now()); err == nil {
		render.PrefetchCRDs(res.Version)
	}
}

// firstRenderConfig is the Config the first reconcile of mesh renders in an empty cluster: the version its spec
// resolves to with nothing running, in place, no cert-manager CA yet (the owner is added on first use).
func (r *ServiceMeshReconciler) firstRenderConfig(mesh *meshv1.ServiceMesh) render.Config {
	res, err := r.Catalog().ResolveRunning(mesh.Spec.Version, "", r.Now())
	if err != nil {
		return render.Config{}
	}
	return r.renderConfig(mesh, res.Version, inPlaceRevisions(res.Version), "", "")
}
