package controllers

import (
	"context"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshwright/meshwright/internal/render"
)

// Until the informer of a kind has synced, syncedOrLive lists that kind from the API server, page by page, and keeps
// what the cache would hold (Meshwright's objects) and the caller's selector selects; once it has synced, from the
// cache.
func TestSyncedOrLiveListsFromTheAPIServerUntilTheInformerHasSynced(t *testing.T) {
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "synced-or-live-"}}
	if err := k8sClient.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8sClient.Delete(ctx, ns) })
	ours := map[string]string{render.LabelManagedBy: render.ManagedBy, render.LabelOwner: "lister"}
	objects := map[string]map[string]string{
		"ours-1": ours, "ours-2": ours, "ours-3": ours,
		"owner-label-only":  {render.LabelOwner: "lister"},
		"another-mesh":      {render.LabelManagedBy: render.ManagedBy, render.LabelOwner: "other"},
		"nobody-labels-it":  nil,
		"ours-4-after-more": ours,
	}
	for name, l := range objects {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns.Name, Labels: l}}
		if err := k8sClient.Create(ctx, cm); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"ours-1", "ours-2", "ours-3", "ours-4-after-more"}
	list := func(r client.Reader) []string {
		t.Helper()
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ConfigMapList"))
		if err := r.List(ctx, l, client.InNamespace(ns.Name), client.MatchingLabels{render.LabelOwner: "lister"}); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, it := range l.Items {
			names = append(names, it.GetName())
		}
		slices.Sort(names)
		return names
	}

	// A cache that has not started: its informers never sync, as one in the API server's 429 back-off.
	opts := CacheOptions()
	opts.Scheme = scheme
	c, err := NewCache(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	cached, err := client.New(cfg, client.Options{Scheme: scheme, Cache: &client.CacheOptions{Reader: c, Unstructured: true}})
	if err != nil {
		t.Fatal(err)
	}
	rec := &requestRecorder{}
	recorded := rest.CopyConfig(cfg)
	recorded.WrapTransport = rec.wrap
	live, err := client.New(recorded, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	r := syncedOrLive{cache: c, cached: cached, live: live, page: 2}
	if got := list(r); !slices.Equal(got, want) {
		t.Errorf("before the informer synced: listed %v, want %v", got, want)
	}
	// Listed without selectors, at resourceVersion 0, in pages: the API server's watch cache serves that at once
	// (here, in one response: it ignores the page size), and etcd while the watch cache is not ready.
	lists := func() (out []recordedRequest) {
		for _, req := range rec.requests() {
			if strings.HasSuffix(req.path, "/configmaps") {
				out = append(out, req)
			}
		}
		return out
	}
	reqs := lists()
	if len(reqs) == 0 {
		t.Fatal("before the informer synced: no list request went to the API server")
	}
	if q := reqs[0].query; strings.Contains(q, "labelSelector") || !strings.Contains(q, "limit=2") || !strings.Contains(q, "resourceVersion=0") {
		t.Errorf("before the informer synced: the list %q has a selector, no page size, or another resourceVersion than 0", q)
	}

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = c.Start(cctx) }()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ConfigMap"))
	if _, err := c.GetInformer(ctx, u, cache.BlockUntilSynced(false)); err != nil {
		t.Fatal(err)
	}
	if !c.WaitForCacheSync(ctx) {
		t.Fatal("the cache did not sync")
	}
	if got := list(r); !slices.Equal(got, want) {
		t.Errorf("after the informer synced: listed %v, want %v", got, want)
	}
	if n := len(lists()); n != len(reqs) {
		t.Errorf("after the informer synced: %d more requests to the API server, want the cache to answer", n-len(reqs))
	}
}
