package controllers

import (
	"cmp"
	"context"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshwright/meshwright/internal/render"
)

// syncedOrLive reads lists of rendered objects from the cache once the informer of their kind has synced, and from
// the API server until then, after starting that informer without waiting for it.
//
// Only the kinds of CRDs that come with the mesh (Istio's PeerAuthentication on a first install) ever take the second
// way: every other watched kind has synced before the first reconcile. A reconcile must not wait for such an informer:
// right after a CRD is established, the API server's watch cache for the new resource may still be being built, and
// it answers a list with a label selector (the informer's) with 429, after which the informer tries again only a
// second later. The list made here has no selector (the caller's is applied to what comes back) and a page size, and
// asks for resourceVersion 0: the watch cache serves it at once when it is ready (as fresh as an informer's list; a
// list at the latest version would wait for etcd's next progress notification, up to 100 ms), and etcd serves it
// while it is not.
type syncedOrLive struct {
	cache  cache.Cache   // the manager's cache, whose informers are asked whether they have synced
	cached client.Reader // reads through that cache
	live   client.Reader // reads from the API server
	page   int64         // page size of a list from the API server (livePage when 0)
}

// livePage is the page size of a list from the API server; a kind whose informer has not synced yet is new, and
// holds few objects.
const livePage = 500

func (r *ServiceMeshReconciler) syncedOrLive() client.Reader {
	if r.cache == nil {
		return r.Client
	}
	return syncedOrLive{cache: r.cache, cached: r.Client, live: r.APIReader}
}

func (s syncedOrLive) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	return s.cached.Get(ctx, key, obj, opts...)
}

// List lists unstructured lists as described above; any other list comes from the cache.
func (s syncedOrLive) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	ul, ok := list.(*unstructured.UnstructuredList)
	if !ok {
		return s.cached.List(ctx, list, opts...)
	}
	gvk := ul.GroupVersionKind()
	item := &unstructured.Unstructured{}
	item.SetGroupVersionKind(gvk.GroupVersion().WithKind(strings.TrimSuffix(gvk.Kind, "List")))
	informer, err := s.cache.GetInformer(ctx, item, cache.BlockUntilSynced(false))
	if err != nil || informer.HasSynced() {
		// An error (the kind is not served) comes back the same from the cached read.
		return s.cached.List(ctx, list, opts...)
	}
	o := (&client.ListOptions{}).ApplyOptions(opts)
	// The cache holds Meshwright's objects only: so does what comes from the API server.
	selector := labels.SelectorFromSet(labels.Set{render.LabelManagedBy: render.ManagedBy})
	if o.LabelSelector != nil {
		reqs, _ := o.LabelSelector.Requirements()
		selector = selector.Add(reqs...)
	}
	var items []unstructured.Unstructured
	var page *unstructured.UnstructuredList
	for next := ""; ; {
		page = &unstructured.UnstructuredList{}
		page.SetGroupVersionKind(gvk)
		at := &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: "0"}}
		if next != "" {
			at = &client.ListOptions{Continue: next} // a page after the first is read where the first was
		}
		if err := s.live.List(ctx, page, client.InNamespace(o.Namespace), client.Limit(cmp.Or(s.page, livePage)), at); err != nil {
			return err
		}
		for _, it := range page.Items {
			if selector.Matches(labels.Set(it.GetLabels())) {
				items = append(items, it)
			}
		}
		if next = page.GetContinue(); next == "" {
			break
		}
	}
	ul.Items = items
	ul.SetResourceVersion(page.GetResourceVersion())
	return nil
}
