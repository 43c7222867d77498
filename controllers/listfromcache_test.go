package controllers

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	clientfeatures "k8s.io/client-go/features"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// recordedRequest is what requestRecorder keeps of a request.
type recordedRequest struct{ method, path, query string }

// requestRecorder records the requests of every transport it wraps.
type requestRecorder struct {
	mu   sync.Mutex
	reqs []recordedRequest
}

// wrap is a rest.Config's WrapTransport: each client the config makes gets its own recording transport.
func (r *requestRecorder) wrap(next http.RoundTripper) http.RoundTripper {
	return recordingTransport{rec: r, next: next}
}

type recordingTransport struct {
	rec  *requestRecorder
	next http.RoundTripper
}

func (t recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.rec.mu.Lock()
	t.rec.reqs = append(t.rec.reqs, recordedRequest{req.Method, req.URL.Path, req.URL.RawQuery})
	t.rec.mu.Unlock()
	return t.next.RoundTrip(req)
}

func (r *requestRecorder) requests() []recordedRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recordedRequest(nil), r.reqs...)
}

// An informer of the operator's caches starts with a list from the API server's watch cache (resourceVersion=0),
// not with a streaming list that waits until the watch cache is as fresh as etcd.
func TestInformersStartWithAListFromTheWatchCache(t *testing.T) {
	if clientfeatures.FeatureGates().Enabled(clientfeatures.WatchListClient) {
		t.Fatal("the suite runs with client-go's WatchListClient on; runSuite calls ListInformersFromTheWatchCache as main does")
	}
	rec := &requestRecorder{}
	c := rest.CopyConfig(cfg)
	c.WrapTransport = rec.wrap
	informers, err := NewCache(c, cache.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() { _ = informers.Start(ctx) }()
	if _, err := informers.GetInformer(ctx, &corev1.ConfigMap{}); err != nil {
		t.Fatal(err)
	}
	var first *recordedRequest
	for _, r := range rec.requests() {
		if r.path == "/api/v1/configmaps" {
			first = &r
			break
		}
	}
	if first == nil {
		t.Fatalf("no request for ConfigMaps recorded: %v", rec.requests())
	}
	if first.method != http.MethodGet || strings.Contains(first.query, "watch=true") || strings.Contains(first.query, "sendInitialEvents") ||
		!strings.Contains(first.query, "resourceVersion=0") {
		t.Fatalf("the ConfigMap informer started with %s %s?%s, want a list with resourceVersion=0", first.method, first.path, first.query)
	}
}

// fixedGates enables exactly the features it holds.
type fixedGates map[clientfeatures.Feature]bool

func (g fixedGates) Enabled(f clientfeatures.Feature) bool { return g[f] }

func TestListInformersFromTheWatchCacheKeepsTheUsersChoice(t *testing.T) {
	previous := clientfeatures.FeatureGates()
	defer clientfeatures.ReplaceFeatureGates(previous)
	gates := fixedGates{clientfeatures.WatchListClient: true, clientfeatures.InformerResourceVersion: true}

	clientfeatures.ReplaceFeatureGates(gates)
	ListInformersFromTheWatchCache()
	if clientfeatures.FeatureGates().Enabled(clientfeatures.WatchListClient) {
		t.Error("WatchListClient still on")
	}
	if !clientfeatures.FeatureGates().Enabled(clientfeatures.InformerResourceVersion) {
		t.Error("another feature was turned off with WatchListClient")
	}

	clientfeatures.ReplaceFeatureGates(gates)
	t.Setenv(watchListEnv, "true")
	ListInformersFromTheWatchCache()
	if !clientfeatures.FeatureGates().Enabled(clientfeatures.WatchListClient) {
		t.Errorf("WatchListClient turned off although %s is set", watchListEnv)
	}
}
