package metricsauth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// countingTransport counts the requests the filter sends to the API server.
type countingTransport struct {
	next http.RoundTripper
	n    atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

// The filter against a real API server: its TokenReview and SubjectAccessReview decide, as they decide for kubectl.
func TestFilterLetsThroughOnlyAuthenticatedAndAuthorizedScrapes(t *testing.T) {
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	ctx := context.Background()
	kube := kubernetes.NewForConfigOrDie(cfg)

	tokenOf := func(name string) string {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}
		if _, err := kube.CoreV1().ServiceAccounts("default").Create(ctx, sa, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		tr, err := kube.CoreV1().ServiceAccounts("default").CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	scraper, stranger := tokenOf("scraper"), tokenOf("stranger")
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader"},
		Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}}
	if _, err := kube.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "metrics-reader"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: "default", Name: "scraper"}}}
	if _, err := kube.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	counter := &countingTransport{}
	reviewCfg := rest.CopyConfig(cfg)
	reviewCfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { counter.next = rt; return counter })
	httpClient, err := rest.HTTPClientFor(reviewCfg)
	if err != nil {
		t.Fatal(err)
	}
	g, err := newGuard(reviewCfg, httpClient)
	if err != nil {
		t.Fatal(err)
	}
	var now atomic.Pointer[time.Time]
	start := time.Now()
	now.Store(&start)
	g.now = func() time.Time { return *now.Load() }
	h, err := g.filter(logr.Discard(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("metrics")) }))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	get := func(path, token string) int {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	for _, c := range []struct {
		name, path, token string
		want              int
	}{
		{"a request without a token is unauthorized", "/metrics", "", http.StatusUnauthorized},
		{"a token the API server does not know is unauthorized", "/metrics", "not-a-token", http.StatusUnauthorized},
		{"a ServiceAccount without the metrics-reader role is forbidden", "/metrics", stranger, http.StatusForbidden},
		{"a ServiceAccount bound to the metrics-reader role reads the metrics", "/metrics", scraper, http.StatusOK},
		{"the role grants /metrics only", "/debug", scraper, http.StatusForbidden},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := get(c.path, c.token); got != c.want {
				t.Errorf("GET %s: %d, want %d", c.path, got, c.want)
			}
		})
	}
	t.Run("decisions are remembered, so a scraper does not cost a review per scrape", func(t *testing.T) {
		before := counter.n.Load()
		for range 5 {
			if got := get("/metrics", scraper); got != http.StatusOK {
				t.Fatalf("GET /metrics: %d", got)
			}
		}
		if got := counter.n.Load() - before; got != 0 {
			t.Errorf("%d API requests for 5 scrapes of a remembered decision, want 0", got)
		}
	})
	t.Run("a remembered permission ends with its TTL once the binding is gone", func(t *testing.T) {
		if err := kube.RbacV1().ClusterRoleBindings().Delete(ctx, binding.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := get("/metrics", scraper); got != http.StatusOK {
			t.Fatalf("GET /metrics within the TTL: %d, want the remembered 200", got)
		}
		later := start.Add(allowTTL + time.Second)
		now.Store(&later)
		if got := get("/metrics", scraper); got != http.StatusForbidden {
			t.Errorf("GET /metrics after the TTL: %d, want 403", got)
		}
	})
}
