package controllers

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The stand-ins below replace only an informer's sync state: what is tested is when syncingCache's wait returns, which
// no API server decides. The real cache under NewCache runs in every envtest and e2e test.

// doneFlag is a DoneChecker completed by hand.
type doneFlag struct {
	once sync.Once
	ch   chan struct{}
}

func newDoneFlag() *doneFlag              { return &doneFlag{ch: make(chan struct{})} }
func (d *doneFlag) Name() string          { return "stand-in" }
func (d *doneFlag) Done() <-chan struct{} { return d.ch }
func (d *doneFlag) set()                  { d.once.Do(func() { close(d.ch) }) }
func (d *doneFlag) isSet() bool           { return toolscache.IsDone(d) }

type stubInformer struct {
	cache.Informer
	synced *doneFlag
}

func (i *stubInformer) HasSynced() bool                          { return i.synced.isSet() }
func (i *stubInformer) HasSyncedChecker() toolscache.DoneChecker { return i.synced }
func (i *stubInformer) RemoveEventHandler(toolscache.ResourceEventHandlerRegistration) error {
	return nil
}

func (i *stubInformer) AddEventHandlerWithOptions(toolscache.ResourceEventHandler, toolscache.HandlerOptions) (toolscache.ResourceEventHandlerRegistration, error) {
	return &stubRegistration{synced: newDoneFlag()}, nil
}

type stubRegistration struct{ synced *doneFlag }

func (r *stubRegistration) HasSynced() bool                          { return r.synced.isSet() }
func (r *stubRegistration) HasSyncedChecker() toolscache.DoneChecker { return r.synced }

type stubCache struct {
	cache.Cache
	informer *stubInformer
	waits    atomic.Int32
	// unsyncedChecks is how many of the cache's own waits find an informer unsynced.
	unsyncedChecks atomic.Int32
	// blockingGets counts GetInformer calls that would have waited with the cache's own 100 ms poll.
	blockingGets atomic.Int32
	// reads counts Get and List calls; unsyncedReads those made before the informer synced.
	reads, unsyncedReads atomic.Int32
}

func (c *stubCache) GetInformer(_ context.Context, _ client.Object, opts ...cache.InformerGetOption) (cache.Informer, error) {
	o := cache.InformerGetOptions{}
	for _, opt := range opts {
		opt(&o)
	}
	if o.BlockUntilSynced == nil || *o.BlockUntilSynced {
		c.blockingGets.Add(1)
	}
	return c.informer, nil
}

func (c *stubCache) Start(context.Context) error { return nil }

// Get and List stand for the cache's reads: they count the reads that found the informer unsynced (the cache's own
// read would then wait for it, checking every 100 ms).
func (c *stubCache) Get(context.Context, client.ObjectKey, client.Object, ...client.GetOption) error {
	c.read()
	return nil
}

func (c *stubCache) List(context.Context, client.ObjectList, ...client.ListOption) error {
	c.read()
	return nil
}

func (c *stubCache) read() {
	c.reads.Add(1)
	if !c.informer.HasSynced() {
		c.unsyncedReads.Add(1)
	}
}

func (c *stubCache) WaitForCacheSync(ctx context.Context) bool {
	c.waits.Add(1)
	if c.unsyncedChecks.Add(-1) >= 0 {
		<-ctx.Done() // an informer the wrapper did not hand out has not synced: the cache's own wait runs out
		return false
	}
	return true
}

func TestCacheSyncWaitsForItsInformersAndTheirHandlers(t *testing.T) {
	ctx := context.Background()
	under := &stubCache{informer: &stubInformer{synced: newDoneFlag()}}
	c := newSyncingCache(under)
	informer, err := c.GetInformer(ctx, &corev1.ConfigMap{})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := informer.AddEventHandlerWithOptions(toolscache.ResourceEventHandlerFuncs{}, toolscache.HandlerOptions{})
	second, _ := informer.AddEventHandlerWithOptions(toolscache.ResourceEventHandlerFuncs{}, toolscache.HandlerOptions{})

	done := make(chan bool, 1)
	go func() { done <- c.WaitForCacheSync(ctx) }()
	notYet := func(what string) {
		t.Helper()
		select {
		case <-done:
			t.Fatalf("WaitForCacheSync returned while %s", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
	notYet("neither the informer nor its handlers had synced")
	under.informer.synced.set()
	notYet("the informer's handlers had not synced")
	first.(*stubRegistration).synced.set()
	notYet("one handler had not synced")
	second.(*stubRegistration).synced.set()
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("WaitForCacheSync reported failure once everything had synced")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitForCacheSync did not return once the informer and its handlers had synced")
	}
	// A handler removed from its informer is not waited for.
	third, _ := informer.AddEventHandlerWithOptions(toolscache.ResourceEventHandlerFuncs{}, toolscache.HandlerOptions{})
	if err := informer.RemoveEventHandler(third); err != nil {
		t.Fatal(err)
	}
	if !c.WaitForCacheSync(ctx) {
		t.Fatal("WaitForCacheSync reported failure with only a removed handler unsynced")
	}
	if under.waits.Load() != 2 {
		t.Errorf("the underlying cache's WaitForCacheSync ran %d times, want twice, each after the informers synced", under.waits.Load())
	}
}

func TestCacheSyncGivesUpWithItsContext(t *testing.T) {
	under := &stubCache{informer: &stubInformer{synced: newDoneFlag()}}
	c := newSyncingCache(under)
	if _, err := c.GetInformer(context.Background(), &corev1.ConfigMap{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if waitDone(ctx, c.checkers) {
		t.Fatal("waitDone reported an informer that never synced as synced")
	}
	under.informer.synced.set()
	if !waitDone(context.Background(), c.checkers) {
		t.Fatal("waitDone reported failure for an informer that has synced")
	}
}

func TestGetInformerWaitsOnTheSyncChannelOnceTheCacheStarted(t *testing.T) {
	ctx := context.Background()
	under := &stubCache{informer: &stubInformer{synced: newDoneFlag()}}
	c := newSyncingCache(under)
	// Before the cache starts, nothing syncs: GetInformer returns at once, as the cache's own does.
	if _, err := c.GetInformer(ctx, &corev1.ConfigMap{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetInformer(ctx, &corev1.ConfigMap{}, cache.BlockUntilSynced(false)); err != nil {
		t.Fatal(err)
	}
	returnsOnceSynced(t, "GetInformer", under.informer, func() error {
		_, err := c.GetInformer(ctx, &corev1.ConfigMap{})
		return err
	})
	if n := under.blockingGets.Load(); n != 0 {
		t.Errorf("%d GetInformer calls reached the cache's own blocking wait, want 0", n)
	}

	unsynced := newSyncingCache(&stubCache{informer: &stubInformer{synced: newDoneFlag()}})
	_ = unsynced.Start(ctx)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := unsynced.GetInformer(short, &corev1.ConfigMap{}); !apierrors.IsTimeout(err) {
		t.Errorf("GetInformer of an informer that never syncs returned %v, want a timeout once its context ended", err)
	}
}

func TestCacheSyncAsksTheCacheAgainForInformersItDidNotHandOut(t *testing.T) {
	under := &stubCache{informer: &stubInformer{synced: newDoneFlag()}}
	under.unsyncedChecks.Store(3)
	c := newSyncingCache(under)
	if !c.WaitForCacheSync(context.Background()) {
		t.Fatal("WaitForCacheSync reported failure although the cache synced at its fourth check")
	}
	if n := under.waits.Load(); n != 4 {
		t.Errorf("the cache was asked %d times, want 4 (three unsynced answers, then synced)", n)
	}
	// Past syncRechecks short checks, the cache's own wait takes over, with the caller's context.
	under = &stubCache{informer: &stubInformer{synced: newDoneFlag()}}
	under.unsyncedChecks.Store(syncRechecks + 5)
	c = newSyncingCache(under)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if c.WaitForCacheSync(ctx) {
		t.Fatal("WaitForCacheSync reported success although the cache never synced")
	}
	if n := under.waits.Load(); n != syncRechecks+1 {
		t.Errorf("the cache was asked %d times, want %d short checks and then its own wait", n, syncRechecks+1)
	}
}

func TestReadsWaitOnTheSyncChannelOnceTheCacheStarted(t *testing.T) {
	ctx := context.Background()
	configMaps := &unstructured.UnstructuredList{}
	configMaps.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ConfigMapList"))
	namespaces := &metav1.PartialObjectMetadataList{}
	namespaces.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NamespaceList"))
	reads := map[string]func(c *syncingCache) error{
		"a typed list":         func(c *syncingCache) error { return c.List(ctx, &corev1.ConfigMapList{}) },
		"an unstructured list": func(c *syncingCache) error { return c.List(ctx, configMaps) },
		"a metadata list":      func(c *syncingCache) error { return c.List(ctx, namespaces) },
		"a get": func(c *syncingCache) error {
			return c.Get(ctx, client.ObjectKey{Namespace: "a", Name: "b"}, &corev1.ConfigMap{})
		},
	}
	for name, read := range reads {
		t.Run(name, func(t *testing.T) {
			under := &stubCache{informer: &stubInformer{synced: newDoneFlag()}}
			c := newSyncingCache(under)
			// Before the cache starts, a read goes to the cache at once (which says it has not started).
			if err := read(c); err != nil {
				t.Fatal(err)
			}
			if err := c.Start(ctx); err != nil {
				t.Fatal(err)
			}
			returnsOnceSynced(t, "the read", under.informer, func() error { return read(c) })
			if got := under.reads.Load(); got != 2 {
				t.Errorf("the cache was read %d times, want 2", got)
			}
			if got := under.unsyncedReads.Load(); got != 1 {
				t.Errorf("%d reads reached the cache before the informer synced, want 1 (the one before the cache started)", got)
			}
		})
	}
}

// returnsOnceSynced runs call, which must not return before informer has synced (checked for 50 ms), then syncs the
// informer, after which call must return without error.
func returnsOnceSynced(t *testing.T, what string, informer *stubInformer, call func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	select {
	case err := <-done:
		t.Fatalf("%s returned (%v) before its informer had synced", what, err)
	case <-time.After(50 * time.Millisecond):
	}
	informer.synced.set()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return once its informer had synced", what)
	}
}
