// Package controllers holds the ServiceMesh reconciler. It is thin: it reads the ServiceMesh, guards deletion with a
// finalizer, and runs the phases resolve → render → apply → prune → assess over a small scope, delegating the work
// to internal packages; a final step writes status. It owns no rendering, apply or status-contract logic.
package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/apply"
	"github.com/meshwright/meshwright/internal/istio"
	"github.com/meshwright/meshwright/internal/render"
	"github.com/meshwright/meshwright/internal/status"
)

// The ServiceMesh API itself; the operator never creates or deletes a ServiceMesh, and writes its spec never
// (update/patch cover the finalizer; status has its own subresource).
// +kubebuilder:rbac:groups=mesh.meshwright.dev,resources=servicemeshes,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=mesh.meshwright.dev,resources=servicemeshes/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=mesh.meshwright.dev,resources=servicemeshes/finalizers,verbs=update
//
// Events are recorded on the ServiceMesh; it is cluster-scoped, so they land in the "default" namespace. A ClusterRole
// is needed because OLM grants namespaced permissions only in the operator's own namespace.
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// ServiceMeshReconciler reconciles ServiceMesh objects.
type ServiceMeshReconciler struct {
	// Client reads from the manager's cache and writes to the API server.
	client.Client
	// APIReader reads straight from the API server: the ServiceMesh itself (its status holds revision state that
	// must not be read stale), the rare lists not worth caching (workloads during a rollout), and the ownership check
	// of rendered objects missing from the label-filtered cache (an object Meshwright did not label is in no cache).
	APIReader client.Reader
	Recorder  events.EventRecorder
	// catalog lists the supported Istio versions: DefaultCatalog unless a test swaps it (SetCatalog) while the
	// manager runs, hence atomic.
	catalog atomic.Pointer[istio.Catalog]
	// Renders caches renders by the hash of their inputs.
	Renders *render.Cache
	// KubeVersion is the cluster's version, for the charts' capability checks.
	KubeVersion string
	// Now is the clock for end-of-life checks; time.Now unless a test swaps it.
	Now func() time.Time
	// settle runs its function (SetSettled) when start-up is over and when the first install is done, each time once
	// reconciles have stopped for settleQuiet: main hands back then what only they needed (internal/memtrim).
	settle settler

	// controller and cache let watches on CRD-backed kinds start once their CRDs are served; crdCache holds only
	// cert-manager's Certificate CRD; usageCache holds the metadata of injected pods and of namespaces.
	controller controller.Controller
	cache      cache.Cache
	crdCache   cache.Cache
	usageCache cache.Cache
	// podWaits maps a mesh's name to whether its last reconcile left it waiting on injected pods (see podEvents).
	podWaits sync.Map
	// seen maps a mesh's name to the resourceVersion it had when a reconcile last read it from the API server or
	// wrote it (see readMesh).
	seen    sync.Map
	watchMu sync.Mutex
	watched map[schema.GroupVersionKind]bool
	// specs remembers which versions of the live CRDs (held as metadata only: syncingCache) were seen to hold the
	// render, for the Appliers of every reconcile (see specsOf).
	specsOnce sync.Once
	specs     *apply.MetadataOnly
	// crdWatch watches CRDs on the API server, in protobuf, while a first install waits for them to be Established.
	crdWatch client.WithWatch
	// recheck reconciles every mesh again (a channel source; nil: none): the CRDs checked ahead after a reconcile
	// took them as they were.
	recheck chan event.GenericEvent
}

// scope is what the phases of one reconcile share.
type scope struct {
	mesh    *meshv1.ServiceMesh
	version istio.Version
	// revisions to render; desiredRevision runs version; tagTarget is where the revision tags point
	// (both "" for InPlace).
	revisions                  []render.Revision
	desiredRevision, tagTarget string
	// tagsMovedFrom is the revision the tags leave in this reconcile ("" when they stay).
	tagsMovedFrom string
	// live is what exists of the mesh (read by observe): the source of truth that status reports.
	live liveState
	// namespaces is the namespace metadata, listed once per reconcile for revision usage (read-only).
	namespaces *metav1.PartialObjectMetadataList
	// upgradeFailed explains a RevisionBased upgrade whose new revision missed its readiness timeout.
	upgradeFailed string
	objects       []*unstructured.Unstructured
	// claims says on what ground rendered objects missing from the labelled cache may be written (checkOwnership).
	claims  apply.Claims
	outcome status.Outcome

	// createOnly are the generated secrets and data volumes the spec asks for, created once (see addons.go).
	createOnly []createOnly
	// foreignGatewayAPI explains the Gateway API CRDs left out of the render because someone else installed them.
	foreignGatewayAPI []string

	// caRoot is the fingerprint of the root in cacerts the render used (cert-manager CA only).
	caRoot string
}

// Reconcile drives one ServiceMesh towards its spec.
func (r *ServiceMeshReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, err error) {
	began := time.Now()
	r.settle.started()
	ready := false
	defer func() { r.settle.ended(ready) }()
	mesh, err := r.readMesh(ctx, req.NamespacedName)
	if err != nil {
		if apierrors.IsNotFound(err) {
			caExpiry.forget(req.Name) // gone without our finalizer (someone removed it)
			r.seen.Delete(req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	defer func() { r.seen.Store(req.Name, mesh.ResourceVersion) }()
	if paused(mesh) {
		return r.reconcilePaused(ctx, mesh)
	}
	if err := r.resume(ctx, mesh); err != nil {
		return ctrl.Result{}, err
	}
	if !mesh.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, mesh)
	}
	if !controllerutil.ContainsFinalizer(mesh, meshv1.Finalizer) {
		if err := patchFinalizer(ctx, r.Client, mesh, controllerutil.AddFinalizer); err != nil {
			return ctrl.Result{}, fmt.Errorf("adding finalizer: %w", err)
		}
	}

	before := mesh.DeepCopy()
	s := &scope{mesh: mesh}
	defer func() {
		status.Apply(mesh, s.outcome, err)
		if perr := r.patchStatus(ctx, before, mesh); perr != nil {
			err = errors.Join(err, perr)
		}
		r.notePodWaits(mesh)
		ready = err == nil && meta.IsStatusConditionTrue(mesh.Status.Conditions, meshv1.ConditionReady)
	}()

	timings := make([]any, 0, 2*len(phases)+4)
	timings = append(timings, "start", time.Since(began).Round(time.Microsecond).String())
	defer func() {
		log.FromContext(ctx).V(1).Info("Reconciled", append(timings, "result", result.RequeueAfter.String(),
			"total", time.Since(began).Round(time.Microsecond).String())...)
	}()
	for _, phase := range phases {
		start := time.Now()
		result, err = phase.run(r, ctx, s)
		took := time.Since(start)
		phaseSeconds.WithLabelValues(phase.name).Observe(took.Seconds())
		timings = append(timings, phase.name, took.Round(time.Microsecond).String())
		if err != nil || !result.IsZero() {
			return result, err
		}
	}
	return result, nil
}

// phases run in this order; each reads and extends the scope. Their durations are logged at V(1) ("Reconciled") and
// exported as meshwright_reconcile_phase_seconds, so that where a reconcile spends its time can be read off a run.
var phases = []struct {
	name string
	run  func(*ServiceMeshReconciler, context.Context, *scope) (ctrl.Result, error)
}{
	{"conflicts", (*ServiceMeshReconciler).checkConflicts},
	{"observe", (*ServiceMeshReconciler).observe},
	{"resolve", (*ServiceMeshReconciler).resolveVersion},
	{"revisions", (*ServiceMeshReconciler).planRevisions},
	{"render", (*ServiceMeshReconciler).render},
	{"ownership", (*ServiceMeshReconciler).checkOwnership},
	{"certificates", (*ServiceMeshReconciler).issueCertificates},
	{"apply", (*ServiceMeshReconciler).apply},
	{"assess", (*ServiceMeshReconciler).assess},
}

var phaseSeconds = func() *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "meshwright_reconcile_phase_seconds",
		Help:    "Time a ServiceMesh reconcile spent in each phase (conflicts, observe, resolve, revisions, render, ownership, certificates, apply, assess).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"phase"})
	ctrlmetrics.Registry.MustRegister(h)
	return h
}()

// stalled records that the spec cannot be acted on until the user changes it. The returned error is terminal: the
// controller does not retry until the ServiceMesh changes.
func (s *scope) stalled(reason, message string) error {
	s.outcome = status.Outcome{Reason: reason, Message: message, Stalled: true}
	return reconcile.TerminalError(errors.New(message))
}

// patchFinalizer adds or removes (change) the finalizer with a merge patch that carries the resourceVersion it was
// decided on: if the ServiceMesh changed meanwhile (another writer's finalizers, a deletion), the API server refuses
// the patch with a Conflict and the reconcile starts again from a fresh read, instead of overwriting the list.
func patchFinalizer(ctx context.Context, c client.Writer, obj client.Object, change func(client.Object, string) bool) error {
	patch := client.MergeFromWithOptions(obj.DeepCopyObject().(client.Object), client.MergeFromWithOptimisticLock{})
	if !change(obj, meshv1.Finalizer) {
		return nil
	}
	return c.Patch(ctx, obj, patch)
}

// readMesh reads a mesh as fresh as the last reconcile left it. Its status holds state (revisions, where the tags
// point) that the previous reconcile may have just written, and acting on a stale copy could move tags back: the cache's
// copy is used only when it is the very version the last reconcile read from the API server or wrote itself (the same
// resourceVersion), and the mesh is read from the API server otherwise. A write by someone else that the cache has not
// seen yet is not read either: its event, which comes once the cache holds it, reconciles the mesh again, and finds a
// version other than the last seen. A first install's reconciles after the first, and a steady state's, cost no read.
// A mesh being deleted is always read from the API server: the version whose finalizer the last reconcile removed
// stays in the cache until the deletion's own event, and a mesh of the same name may exist again already.
func (r *ServiceMeshReconciler) readMesh(ctx context.Context, key client.ObjectKey) (*meshv1.ServiceMesh, error) {
	if last, ok := r.seen.Load(key.Name); ok && r.cache != nil {
		cached := &meshv1.ServiceMesh{}
		if err := r.cache.Get(ctx, key, cached); err == nil && cached.ResourceVersion == last && cached.DeletionTimestamp.IsZero() {
			return cached, nil
		}
	}
	mesh := &meshv1.ServiceMesh{}
	return mesh, r.APIReader.Get(ctx, key, mesh)
}

// patchStatus writes status only when it changed, so a steady state costs no API write.
func (r *ServiceMeshReconciler) patchStatus(ctx context.Context, before, after *meshv1.ServiceMesh) error {
	if equality.Semantic.DeepEqual(before.Status, after.Status) {
		return nil
	}
	if err := r.Status().Patch(ctx, after, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("patching status: %w", err)
	}
	return nil
}

// applyConcurrency bounds the writes (and ownership lookups) in flight at once: objects of one stage do not depend on
// each other, and a first install applies about forty of them, fifteen in its largest stage, which goes out in one
// round (with 8, a first install took two rounds more, 30 to 50 ms). The client's rate limit (--kube-api-burst) still
// applies. The leader fence holds for each write where it leaves the process (leader.Fence.WrapTransport), so
// concurrent writes cannot land after the Lease was lost.
const applyConcurrency = 32

// SetSettled sets what runs once start-up is over and once the first install is done (see settler); call it
// before the manager starts. Start-up is over once the warm render is made.
func (r *ServiceMeshReconciler) SetSettled(fn func()) {
	r.settle.mu.Lock()
	r.settle.fn, r.settle.quiet = fn, settleQuiet
	r.settle.mu.Unlock()
	go func() {
		<-r.Renders.Warmed()
		r.settle.startupDone()
	}()
}

// Catalog returns the version catalog in use.
func (r *ServiceMeshReconciler) Catalog() *istio.Catalog { return r.catalog.Load() }

// SetCatalog replaces the version catalog, as a newer or older build of Meshwright would embed another one.
func (r *ServiceMeshReconciler) SetCatalog(c *istio.Catalog) { r.catalog.Store(c) }

func (r *ServiceMeshReconciler) applier(mesh *meshv1.ServiceMesh) *apply.Applier {
	return &apply.Applier{Reader: r.syncedOrLive(), Writer: r.Client, Uncached: r.APIReader, OwnerLabel: render.LabelOwner, Owner: mesh.Name,
		OwnerExists: r.meshExists, Batch: func(o *unstructured.Unstructured) int { return int(render.StageOf(o)) }, Concurrency: applyConcurrency,
		MetadataOnly: r.crdSpecs()}
}

// crdSpecs says to Appliers that CRDs come from the cache as metadata only, and keeps what they learn of them; a CRD's
// whole object is read from the API server.
func (r *ServiceMeshReconciler) crdSpecs() *apply.MetadataOnly {
	r.specsOnce.Do(func() {
		r.specs = &apply.MetadataOnly{Kinds: map[schema.GroupKind]bool{crdGVK.GroupKind(): true}, Live: r.APIReader}
	})
	return r.specs
}

// meshExists asks the API server (the cache may still hold a mesh just deleted) whether a ServiceMesh exists.
func (r *ServiceMeshReconciler) meshExists(ctx context.Context, name string) (bool, error) {
	err := r.APIReader.Get(ctx, client.ObjectKey{Name: name}, &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{
		APIVersion: meshv1.GroupVersion.String(), Kind: "ServiceMesh"}})
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("reading ServiceMesh %s: %w", name, err)
	}
	return true, nil
}
