// Package leader fences the operator's writes behind its leader election Lease. Leader election alone does not stop a
// replica that was paused (a long GC pause, a frozen VM, SIGSTOP) from finishing a write after another replica took
// the Lease over: it learns that it lost leadership only when its renew loop runs again. The fence records when the
// Lease was last renewed and refuses every write once the renew deadline has passed since then, so a replica that
// wakes up after losing the Lease writes nothing before it stops.
//
// It owns the lock wrapper and the write-guarding client; it does not run the election (controller-runtime does).
package leader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/leaderelection"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/meshwright/meshwright/internal/apply"
)

// ErrLeaseExpired is returned for a write attempted while the Lease is not known to be held.
var ErrLeaseExpired = errors.New("not writing: this replica's leader election Lease was not renewed within the renew deadline")

// Fence records Lease renewals and answers whether writing is still safe.
type Fence struct {
	// RenewDeadline is how long after the last renewal writes stay allowed; it must be shorter than the Lease
	// duration, which is how long other replicas wait before taking over.
	RenewDeadline time.Duration
	// Now is the clock (monotonic readings from time.Now keep counting while the process is stopped).
	Now func() time.Time

	mu        sync.Mutex
	lastRenew time.Time
}

// NewFence returns a fence with the given renew deadline and the real clock.
func NewFence(renewDeadline time.Duration) *Fence {
	return &Fence{RenewDeadline: renewDeadline, Now: time.Now}
}

// Check returns ErrLeaseExpired unless the Lease was renewed within the renew deadline.
func (f *Fence) Check() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lastRenew.IsZero() || f.Now().Sub(f.lastRenew) > f.RenewDeadline {
		return ErrLeaseExpired
	}
	return nil
}

func (f *Fence) renewed(at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastRenew = at
}

// NewResourceLock builds controller-runtime's Lease lock for options and wraps it so that every successful create or
// update of the Lease (acquire or renew) is recorded by the fence. Leader election events are not recorded (the
// Lease itself names its holder), so the lock needs no permission on Events.
func (f *Fence) NewResourceLock(cfg *rest.Config, options leaderelection.Options) (resourcelock.Interface, error) {
	lock, err := leaderelection.NewResourceLock(cfg, noEvents{}, options)
	if err != nil {
		return nil, fmt.Errorf("creating the leader election lock: %w", err)
	}
	return &fencedLock{Interface: lock, fence: f}, nil
}

type fencedLock struct {
	resourcelock.Interface
	fence *Fence
}

func (l *fencedLock) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	// The time is taken before the request: the Lease can only have been renewed later than that.
	start := l.fence.Now()
	err := l.Interface.Create(ctx, ler)
	if err == nil && ler.HolderIdentity == l.Identity() {
		l.fence.renewed(start)
	}
	return err
}

func (l *fencedLock) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	start := l.fence.Now()
	err := l.Interface.Update(ctx, ler)
	if err == nil && ler.HolderIdentity == l.Identity() {
		l.fence.renewed(start)
	}
	return err
}

// Client wraps c so that every write first checks the fence; reads pass through.
func (f *Fence) Client(c client.Client) client.Client { return &fencedClient{Client: c, fence: f} }

type fencedClient struct {
	client.Client
	fence *Fence
}

func (c *fencedClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	if err := c.fence.Check(); err != nil {
		return err
	}
	return c.Client.Create(ctx, obj, opts...)
}

func (c *fencedClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	if err := c.fence.Check(); err != nil {
		return err
	}
	return c.Client.Update(ctx, obj, opts...)
}

func (c *fencedClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if err := c.fence.Check(); err != nil {
		return err
	}
	return c.Client.Patch(ctx, obj, patch, opts...)
}

func (c *fencedClient) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	if err := c.fence.Check(); err != nil {
		return err
	}
	return c.Client.Apply(ctx, obj, opts...)
}

// ApplyForMetadata is the wrapped client's, fenced (apply.MetadataApplier); a client without it applies a copy of obj
// as Apply does, and the metadata comes from the copy.
func (c *fencedClient) ApplyForMetadata(ctx context.Context, obj *unstructured.Unstructured, fieldOwner string) (metav1.ObjectMeta, error) {
	if err := c.fence.Check(); err != nil {
		return metav1.ObjectMeta{}, err
	}
	if b, ok := c.Client.(apply.MetadataApplier); ok {
		return b.ApplyForMetadata(ctx, obj, fieldOwner)
	}
	// The client's Apply decodes the answer into what it sends: it gets a copy, since obj is left as it is (rendered
	// objects are shared).
	applied := obj.DeepCopy()
	if err := c.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(applied), client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
		return metav1.ObjectMeta{}, err
	}
	return metav1.ObjectMeta{UID: applied.GetUID(), Generation: applied.GetGeneration(), ResourceVersion: applied.GetResourceVersion()}, nil
}

func (c *fencedClient) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	if err := c.fence.Check(); err != nil {
		return err
	}
	return c.Client.Delete(ctx, obj, opts...)
}

func (c *fencedClient) DeleteAllOf(ctx context.Context, obj client.Object, opts ...client.DeleteAllOfOption) error {
	if err := c.fence.Check(); err != nil {
		return err
	}
	return c.Client.DeleteAllOf(ctx, obj, opts...)
}

func (c *fencedClient) Status() client.SubResourceWriter {
	return &fencedSubResource{SubResourceWriter: c.Client.Status(), fence: c.fence}
}

func (c *fencedClient) SubResource(subResource string) client.SubResourceClient {
	return &fencedSubResourceClient{SubResourceClient: c.Client.SubResource(subResource), fence: c.fence}
}

type fencedSubResource struct {
	client.SubResourceWriter
	fence *Fence
}

func (w *fencedSubResource) Create(ctx context.Context, obj, sub client.Object, opts ...client.SubResourceCreateOption) error {
	if err := w.fence.Check(); err != nil {
		return err
	}
	return w.SubResourceWriter.Create(ctx, obj, sub, opts...)
}

func (w *fencedSubResource) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	if err := w.fence.Check(); err != nil {
		return err
	}
	return w.SubResourceWriter.Update(ctx, obj, opts...)
}

func (w *fencedSubResource) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	if err := w.fence.Check(); err != nil {
		return err
	}
	return w.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}

func (w *fencedSubResource) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.SubResourceApplyOption) error {
	if err := w.fence.Check(); err != nil {
		return err
	}
	return w.SubResourceWriter.Apply(ctx, obj, opts...)
}

type fencedSubResourceClient struct {
	client.SubResourceClient
	fence *Fence
}

func (c *fencedSubResourceClient) Create(ctx context.Context, obj, sub client.Object, opts ...client.SubResourceCreateOption) error {
	if err := c.fence.Check(); err != nil {
		return err
	}
	return c.SubResourceClient.Create(ctx, obj, sub, opts...)
}

func (c *fencedSubResourceClient) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	if err := c.fence.Check(); err != nil {
		return err
	}
	return c.SubResourceClient.Update(ctx, obj, opts...)
}

func (c *fencedSubResourceClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	if err := c.fence.Check(); err != nil {
		return err
	}
	return c.SubResourceClient.Patch(ctx, obj, patch, opts...)
}

func (c *fencedSubResourceClient) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.SubResourceApplyOption) error {
	if err := c.fence.Check(); err != nil {
		return err
	}
	return c.SubResourceClient.Apply(ctx, obj, opts...)
}

// noEvents is a recorder provider that records nothing, for either events API.
type noEvents struct{}

func (noEvents) GetEventRecorderFor(string) record.EventRecorder { return nopRecorder{} }

func (noEvents) GetEventRecorder(string) recorder.EventRecorder { return nopEventsRecorder{} }

type nopRecorder struct{}

func (nopRecorder) Event(runtime.Object, string, string, string)          {}
func (nopRecorder) Eventf(runtime.Object, string, string, string, ...any) {}
func (nopRecorder) AnnotatedEventf(runtime.Object, map[string]string, string, string, string, ...any) {
}

type nopEventsRecorder struct{}

func (nopEventsRecorder) Eventf(runtime.Object, runtime.Object, string, string, string, string, ...any) {
}
func (nopEventsRecorder) AnnotatedEventf(runtime.Object, runtime.Object, map[string]string, string, string, string, string, ...any) {
}

// remaining returns how long writes stay allowed, or ErrLeaseExpired.
func (f *Fence) remaining() (time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lastRenew.IsZero() {
		return 0, ErrLeaseExpired
	}
	left := f.RenewDeadline - f.Now().Sub(f.lastRenew)
	if left <= 0 {
		return 0, ErrLeaseExpired
	}
	return left, nil
}

// WrapTransport returns rt with every mutating request (POST, PUT, PATCH, DELETE) fenced where it leaves the process:
// after client-go's rate limiter, so a write that waited there is checked again, and with a deadline at the end of the
// renew deadline, so a write still waiting for a connection when the process is frozen past it is abandoned, never
// sent late. This is what lets writes of one stage be in flight at the same time. Set it on the manager's config
// only, not on the leader election lock's (the lock's own requests renew the Lease).
func (f *Fence) WrapTransport(rt http.RoundTripper) http.RoundTripper {
	return fencedTransport{next: rt, fence: f}
}

type fencedTransport struct {
	next  http.RoundTripper
	fence *Fence
}

func (t fencedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	switch req.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return t.next.RoundTrip(req)
	}
	left, err := t.fence.remaining()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeoutCause(req.Context(), left, ErrLeaseExpired)
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelOnClose releases a request's deadline once its response has been read.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
