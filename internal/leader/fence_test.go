package leader

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// memLock is an in-memory lock: the fence's only contract with it is "a Create or Update that returned nil renewed
// the Lease", which needs no API server.
type memLock struct {
	resourcelock.Interface
	id  string
	err error
}

func (l *memLock) Identity() string { return l.id }
func (l *memLock) Create(context.Context, resourcelock.LeaderElectionRecord) error {
	return l.err
}
func (l *memLock) Update(context.Context, resourcelock.LeaderElectionRecord) error {
	return l.err
}

func TestFence(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	newFence := func() (*Fence, *fencedLock, *memLock) {
		f := &Fence{RenewDeadline: 10 * time.Second, Now: func() time.Time { return now }}
		inner := &memLock{id: "me"}
		return f, &fencedLock{Interface: inner, fence: f}, inner
	}
	mine := resourcelock.LeaderElectionRecord{HolderIdentity: "me"}

	t.Run("refuses writes before the Lease was ever acquired", func(t *testing.T) {
		f, _, _ := newFence()
		if err := f.Check(); !errors.Is(err, ErrLeaseExpired) {
			t.Fatalf("Check = %v, want ErrLeaseExpired", err)
		}
	})
	t.Run("allows writes within the renew deadline of an acquisition or renewal", func(t *testing.T) {
		f, lock, _ := newFence()
		if err := lock.Create(context.Background(), mine); err != nil {
			t.Fatal(err)
		}
		now = now.Add(9 * time.Second)
		if err := f.Check(); err != nil {
			t.Fatalf("Check 9s after acquiring = %v", err)
		}
		if err := lock.Update(context.Background(), mine); err != nil {
			t.Fatal(err)
		}
		now = now.Add(9 * time.Second)
		if err := f.Check(); err != nil {
			t.Fatalf("Check 9s after renewing = %v", err)
		}
	})
	t.Run("refuses writes once the renew deadline passed, as after a SIGSTOP", func(t *testing.T) {
		f, lock, _ := newFence()
		if err := lock.Update(context.Background(), mine); err != nil {
			t.Fatal(err)
		}
		now = now.Add(11 * time.Second)
		if err := f.Check(); !errors.Is(err, ErrLeaseExpired) {
			t.Fatalf("Check 11s after the last renewal = %v, want ErrLeaseExpired", err)
		}
	})
	t.Run("a failed renewal or a record naming another holder does not count", func(t *testing.T) {
		f, lock, inner := newFence()
		inner.err = errors.New("conflict")
		_ = lock.Update(context.Background(), mine)
		inner.err = nil
		_ = lock.Update(context.Background(), resourcelock.LeaderElectionRecord{HolderIdentity: "other"})
		if err := f.Check(); !errors.Is(err, ErrLeaseExpired) {
			t.Fatalf("Check = %v, want ErrLeaseExpired", err)
		}
	})
}

// The transport fence, with a real HTTP server: what matters is whether a write reaches the server.
func TestFencedTransport(t *testing.T) {
	var mu sync.Mutex
	seen := []string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method)
		mu.Unlock()
		_, _ = io.WriteString(w, "{}")
	}))
	t.Cleanup(srv.Close)
	received := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
	send := func(rt http.RoundTripper, method string) error {
		req, err := http.NewRequest(method, srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := rt.RoundTrip(req)
		if err != nil {
			return err
		}
		_, _ = io.ReadAll(resp.Body)
		return resp.Body.Close()
	}

	t.Run("writes pass while the Lease is held; reads always pass", func(t *testing.T) {
		seen = nil
		f := NewFence(time.Minute)
		rt := f.WrapTransport(http.DefaultTransport)
		if err := send(rt, http.MethodGet); err != nil {
			t.Fatalf("a read before the Lease was acquired: %v", err)
		}
		f.renewed(time.Now())
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			if err := send(rt, m); err != nil {
				t.Fatalf("%s with the Lease held: %v", m, err)
			}
		}
		if got := received(); !slices.Equal(got, []string{"GET", "POST", "PUT", "PATCH", "DELETE"}) {
			t.Fatalf("the server received %v", got)
		}
	})
	t.Run("a write after the renew deadline never leaves the process", func(t *testing.T) {
		seen = nil
		f := NewFence(50 * time.Millisecond)
		f.renewed(time.Now().Add(-time.Second))
		if err := send(f.WrapTransport(http.DefaultTransport), http.MethodPatch); !errors.Is(err, ErrLeaseExpired) {
			t.Fatalf("PATCH = %v, want ErrLeaseExpired", err)
		}
		if got := received(); len(got) != 0 {
			t.Fatalf("the server received %v", got)
		}
	})
	t.Run("a write frozen while it waited for a connection is abandoned, not sent late", func(t *testing.T) {
		var late atomic.Int64
		lateSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { late.Add(1) }))
		f := NewFence(200 * time.Millisecond)
		f.renewed(time.Now())
		frozen := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			// The process is stopped here until past the renew deadline (bounded, should the request carry none),
			// then carries on dialing.
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
			}
			return (&net.Dialer{}).Dial(network, addr)
		}}
		t.Cleanup(frozen.CloseIdleConnections)
		req, err := http.NewRequest(http.MethodPatch, lateSrv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp, err := f.WrapTransport(frozen).RoundTrip(req); err == nil {
			resp.Body.Close()
			t.Fatal("the write went through after the renew deadline")
		}
		lateSrv.Close() // waits for every request the server accepted to be handled
		if n := late.Load(); n != 0 {
			t.Fatalf("the server received %d writes after the renew deadline", n)
		}
	})
}

// bodylessRecorder is a client that only records applies answered with metadata.
type bodylessRecorder struct {
	client.Client
	applied []string
}

func (b *bodylessRecorder) ApplyForMetadata(_ context.Context, obj *unstructured.Unstructured, _ string) (metav1.ObjectMeta, error) {
	b.applied = append(b.applied, obj.GetName())
	return metav1.ObjectMeta{Name: obj.GetName(), Generation: 1}, nil
}

func TestFencedClientFencesBodylessApplies(t *testing.T) {
	f := NewFence(10 * time.Second)
	inner := &bodylessRecorder{}
	c := f.Client(inner).(*fencedClient)
	obj := &unstructured.Unstructured{}
	obj.SetName("istiod")
	if _, err := c.ApplyForMetadata(context.Background(), obj, "meshwright"); !errors.Is(err, ErrLeaseExpired) {
		t.Fatalf("ApplyForMetadata before any renewal = %v, want ErrLeaseExpired", err)
	}
	if len(inner.applied) != 0 {
		t.Fatalf("the wrapped client applied %v without the Lease", inner.applied)
	}
	f.renewed(time.Now())
	if m, err := c.ApplyForMetadata(context.Background(), obj, "meshwright"); err != nil || m.Generation != 1 {
		t.Fatalf("ApplyForMetadata = %+v, %v: want the wrapped client's answer", m, err)
	}
	if !slices.Equal(inner.applied, []string{"istiod"}) {
		t.Fatalf("the wrapped client applied %v, want [istiod]", inner.applied)
	}
}

// applyRecorder is a client without ApplyForMetadata whose Apply writes into what it is given, as a real client decodes
// the API server's answer into it.
type applyRecorder struct {
	client.Client
	applied int
}

func (a *applyRecorder) Apply(_ context.Context, obj runtime.ApplyConfiguration, _ ...client.ApplyOption) error {
	a.applied++
	if u, ok := obj.(interface{ GetObjectKind() schema.ObjectKind }); ok {
		u.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{Kind: "Overwritten"})
	}
	if m, ok := obj.(metav1.Object); ok {
		m.SetUID("answered")
		m.SetGeneration(7)
	}
	return nil
}

func TestFencedBodylessApplyLeavesTheObjectAloneWhenTheClientCannot(t *testing.T) {
	f := NewFence(10 * time.Second)
	f.renewed(time.Now())
	inner := &applyRecorder{}
	obj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "istio"}}}
	m, err := f.Client(inner).(*fencedClient).ApplyForMetadata(context.Background(), obj, "meshwright")
	if err != nil {
		t.Fatal(err)
	}
	if inner.applied != 1 || obj.GetKind() != "ConfigMap" {
		t.Fatalf("applied %d times, object kind now %q: want one apply of a copy, the object left as it was", inner.applied, obj.GetKind())
	}
	if m.UID != "answered" || m.Generation != 7 {
		t.Fatalf("ApplyForMetadata returned %+v, want the uid and generation of the answer decoded into the copy", m)
	}
}
