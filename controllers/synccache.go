package controllers

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// NewCache is the cache.NewCacheFunc of the operator's caches: cache.New, with the waits for informers to sync made on
// their sync channels. The cache's own waits check every 100 ms (client-go's poll), and each source of the controller
// waits three times in a row (for its informer, for the cache, for its handler): at start-up that was most of the time
// from taking the Lease to the first reconcile. GetInformer waits for a new informer itself, and WaitForCacheSync
// first waits for the informers handed out and the event handlers added to them, so that the cache's and the source's
// own waits find everything synced at their first check.
func NewCache(cfg *rest.Config, opts cache.Options) (cache.Cache, error) {
	c, err := cache.New(cfg, opts)
	if err != nil {
		return nil, err
	}
	s := newSyncingCache(c)
	if opts.Scheme != nil {
		s.scheme = opts.Scheme
	}
	return s, nil
}

func newSyncingCache(c cache.Cache) *syncingCache {
	return &syncingCache{Cache: c, scheme: clientgoscheme.Scheme, informers: map[cache.Informer]bool{},
		handlers: map[toolscache.ResourceEventHandlerRegistration]bool{}}
}

type syncingCache struct {
	cache.Cache
	scheme    *runtime.Scheme // knows the typed lists read (the item of a list is looked up in it)
	started   atomic.Bool
	mu        sync.Mutex
	informers map[cache.Informer]bool
	handlers  map[toolscache.ResourceEventHandlerRegistration]bool
}

func (c *syncingCache) Start(ctx context.Context) error {
	c.started.Store(true)
	return c.Cache.Start(ctx)
}

// GetInformer is the cache's, except that the wait for a new informer to sync (once the cache has started, unless
// BlockUntilSynced(false)) is on its sync channel: the cache's own checks every 100 ms, and every source of the
// controller starts with such a wait.
func (c *syncingCache) GetInformer(ctx context.Context, obj client.Object, opts ...cache.InformerGetOption) (cache.Informer, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok && u.GroupVersionKind() == crdGVK {
		obj = crdMetadata()
	}
	i, err := c.Cache.GetInformer(ctx, obj, append(opts, cache.BlockUntilSynced(false))...)
	if err != nil {
		return nil, err
	}
	return c.waitInformer(ctx, i, fmt.Sprintf("%T", obj), opts)
}

func (c *syncingCache) GetInformerForKind(ctx context.Context, gvk schema.GroupVersionKind, opts ...cache.InformerGetOption) (cache.Informer, error) {
	if gvk == crdGVK {
		return c.GetInformer(ctx, crdMetadata(), opts...)
	}
	i, err := c.Cache.GetInformerForKind(ctx, gvk, append(opts, cache.BlockUntilSynced(false))...)
	if err != nil {
		return nil, err
	}
	return c.waitInformer(ctx, i, gvk.String(), opts)
}

// Get and List read as the cache does, except that a read of a kind whose informer has not synced yet, once the cache
// has started, waits on that informer's sync channel first: the cache's own wait checks every 100 ms. An event handler
// of the controller that lists the ServiceMeshes (a namespace's first event, while the informers list at start-up)
// held the start of the controller that long.
func (c *syncingCache) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if u, ok := obj.(*unstructured.Unstructured); ok && u.GroupVersionKind() == crdGVK {
		m := crdMetadata()
		if err := c.Get(ctx, key, m, opts...); err != nil {
			return err
		}
		return metadataInto(m, u)
	}
	if err := c.awaitSynced(ctx, obj); err != nil {
		return err
	}
	return c.Cache.Get(ctx, key, obj, opts...)
}

func (c *syncingCache) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if ul, ok := list.(*unstructured.UnstructuredList); ok && ul.GroupVersionKind() == crdListGVK {
		ml := &metav1.PartialObjectMetadataList{}
		ml.SetGroupVersionKind(crdListGVK)
		if err := c.List(ctx, ml, opts...); err != nil {
			return err
		}
		ul.Items = make([]unstructured.Unstructured, len(ml.Items))
		for i := range ml.Items {
			if err := metadataInto(&ml.Items[i], &ul.Items[i]); err != nil {
				return err
			}
		}
		ul.SetResourceVersion(ml.ResourceVersion)
		return nil
	}
	if item := c.itemOf(list); item != nil {
		if err := c.awaitSynced(ctx, item); err != nil {
			return err
		}
	}
	return c.Cache.List(ctx, list, opts...)
}

// awaitSynced waits until the informer of obj's kind has synced, starting it if needed, as a read would. An error in
// finding the informer is left to the read itself to report.
func (c *syncingCache) awaitSynced(ctx context.Context, obj client.Object) error {
	if !c.started.Load() {
		return nil
	}
	i, err := c.Cache.GetInformer(ctx, obj, cache.BlockUntilSynced(false))
	if err != nil || i.HasSynced() {
		return nil
	}
	select {
	case <-i.HasSyncedChecker().Done():
		return nil
	case <-ctx.Done():
		return apierrors.NewTimeoutError(fmt.Sprintf("failed waiting for %T informer to sync", obj), 0)
	}
}

// itemOf returns an empty item of list's kind, nil when it cannot tell.
func (c *syncingCache) itemOf(list client.ObjectList) client.Object {
	switch l := list.(type) {
	case *unstructured.UnstructuredList:
		gvk := l.GroupVersionKind()
		item := &unstructured.Unstructured{}
		item.SetGroupVersionKind(gvk.GroupVersion().WithKind(strings.TrimSuffix(gvk.Kind, "List")))
		return item
	case *metav1.PartialObjectMetadataList:
		gvk := l.GroupVersionKind()
		item := &metav1.PartialObjectMetadata{}
		item.SetGroupVersionKind(gvk.GroupVersion().WithKind(strings.TrimSuffix(gvk.Kind, "List")))
		return item
	}
	gvk, err := apiutil.GVKForObject(list, c.scheme)
	if err != nil {
		return nil
	}
	o, err := c.scheme.New(gvk.GroupVersion().WithKind(strings.TrimSuffix(gvk.Kind, "List")))
	if err != nil {
		return nil
	}
	item, _ := o.(client.Object)
	return item
}

// waitInformer tracks i (before waiting for it: a WaitForCacheSync meanwhile must wait for it too) and waits for it
// to sync unless opts say not to.
func (c *syncingCache) waitInformer(ctx context.Context, i cache.Informer, what string, opts []cache.InformerGetOption) (cache.Informer, error) {
	tracked := c.track(i)
	o := cache.InformerGetOptions{}
	for _, opt := range opts {
		opt(&o)
	}
	if (o.BlockUntilSynced == nil || *o.BlockUntilSynced) && c.started.Load() {
		select {
		case <-i.HasSyncedChecker().Done():
		case <-ctx.Done():
			return nil, apierrors.NewTimeoutError(fmt.Sprintf("failed waiting for %s informer to sync", what), 0)
		}
	}
	return tracked, nil
}

func (c *syncingCache) RemoveInformer(ctx context.Context, obj client.Object) error {
	if err := c.Cache.RemoveInformer(ctx, obj); err != nil {
		return err
	}
	// The informer's handlers go with it; forget everything rather than find out which they were. The wait is then
	// the cache's own again until the next informers are handed out.
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.informers)
	clear(c.handlers)
	return nil
}

// syncRecheck and syncRechecks: after the informers handed out have synced, the cache itself is asked with a
// deadline of syncRecheck, up to syncRechecks times, before its own wait (every 100 ms) takes over. It knows informers
// this wrapper did not hand out (a cache read of a new kind starts one), and an informer may be added between the
// two waits.
const (
	syncRecheck  = 5 * time.Millisecond
	syncRechecks = 20
)

func (c *syncingCache) WaitForCacheSync(ctx context.Context) bool {
	for range syncRechecks {
		if !waitDone(ctx, c.checkers) {
			return false
		}
		short, cancel := context.WithTimeout(ctx, syncRecheck)
		synced := c.Cache.WaitForCacheSync(short)
		cancel()
		if synced {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
	}
	return c.Cache.WaitForCacheSync(ctx)
}

func (c *syncingCache) track(i cache.Informer) cache.Informer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.informers[i] = true
	return &trackedInformer{Informer: i, c: c}
}

// checkers returns the sync checkers of every informer handed out and every handler added to one.
func (c *syncingCache) checkers() []toolscache.DoneChecker {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]toolscache.DoneChecker, 0, len(c.informers)+len(c.handlers))
	for i := range c.informers {
		out = append(out, i.HasSyncedChecker())
	}
	for h := range c.handlers {
		out = append(out, h.HasSyncedChecker())
	}
	return out
}

// waitDone waits until every checker that checkers returns is done, asking again after each round for those added
// meanwhile, and reports false if ctx ends first.
func waitDone(ctx context.Context, checkers func() []toolscache.DoneChecker) bool {
	for {
		waited := false
		for _, d := range checkers() {
			select {
			case <-d.Done():
				continue
			default:
			}
			waited = true
			select {
			case <-d.Done():
			case <-ctx.Done():
				return false
			}
		}
		if !waited {
			return true
		}
	}
}

// trackedInformer records the handlers added to an informer, so that syncingCache waits for them too.
type trackedInformer struct {
	cache.Informer
	c *syncingCache
}

func (i *trackedInformer) AddEventHandler(h toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
	return i.record(i.Informer.AddEventHandler(h))
}

func (i *trackedInformer) AddEventHandlerWithResyncPeriod(h toolscache.ResourceEventHandler, resync time.Duration) (toolscache.ResourceEventHandlerRegistration, error) {
	return i.record(i.Informer.AddEventHandlerWithResyncPeriod(h, resync))
}

func (i *trackedInformer) AddEventHandlerWithOptions(h toolscache.ResourceEventHandler, opts toolscache.HandlerOptions) (toolscache.ResourceEventHandlerRegistration, error) {
	return i.record(i.Informer.AddEventHandlerWithOptions(h, opts))
}

func (i *trackedInformer) RemoveEventHandler(h toolscache.ResourceEventHandlerRegistration) error {
	i.c.mu.Lock()
	delete(i.c.handlers, h)
	i.c.mu.Unlock()
	return i.Informer.RemoveEventHandler(h)
}

func (i *trackedInformer) record(h toolscache.ResourceEventHandlerRegistration, err error) (toolscache.ResourceEventHandlerRegistration, error) {
	if err == nil && h != nil {
		i.c.mu.Lock()
		i.c.handlers[h] = true
		i.c.mu.Unlock()
	}
	return h, err
}

// CustomResourceDefinitions are held as metadata only (Istio's fifteen are about half a megabyte of JSON, decoded at
// every status change while the API server establishes them, and listed at every start): a read or an informer of
// unstructured CRDs is answered from the metadata informer, with each object's apiVersion, kind and metadata and
// nothing else. What needs a CRD's spec or status reads it from the API server (the Applier's check of a CRD's spec,
// the wait for Established).
var crdListGVK = crdGVK.GroupVersion().WithKind(crdGVK.Kind + "List")

func crdMetadata() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(crdGVK)
	return m
}

// metadataInto makes u the object m describes: its apiVersion, kind and metadata.
func metadataInto(m *metav1.PartialObjectMetadata, u *unstructured.Unstructured) error {
	meta, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&m.ObjectMeta)
	if err != nil {
		return err
	}
	u.Object = map[string]any{"apiVersion": crdGVK.GroupVersion().String(), "kind": crdGVK.Kind, "metadata": meta}
	return nil
}
