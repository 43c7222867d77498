package controllers

import (
	"context"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/render"
)

// WatchedKinds are the kinds the renderers emit. Each is watched (label-filtered to Meshwright's objects), so a
// deleted or edited object is restored within seconds. A test fails when a renderer emits a kind missing here.
var WatchedKinds = []schema.GroupVersionKind{
	{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"},
	{Version: "v1", Kind: "Namespace"},
	{Version: "v1", Kind: "ServiceAccount"},
	{Version: "v1", Kind: "ConfigMap"},
	{Version: "v1", Kind: "Service"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRole"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRoleBinding"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "Role"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "RoleBinding"},
	{Group: "apps", Version: "v1", Kind: "Deployment"},
	{Group: "apps", Version: "v1", Kind: "DaemonSet"},
	{Group: "autoscaling", Version: "v2", Kind: "HorizontalPodAutoscaler"},
	{Group: "policy", Version: "v1", Kind: "PodDisruptionBudget"},
	{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"},
	{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "MutatingWebhookConfiguration"},
	{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingWebhookConfiguration"},
	{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingAdmissionPolicy"},
	{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingAdmissionPolicyBinding"},
}

// CRDBackedKinds are rendered kinds whose CRDs may not exist when the operator starts (Istio's come with the base
// chart, cert-manager's with cert-manager). They are watched from the first reconcile that finds them served.
var CRDBackedKinds = []schema.GroupVersionKind{
	{Group: "security.istio.io", Version: "v1", Kind: "PeerAuthentication"},
	{Group: "cert-manager.io", Version: "v1", Kind: "Certificate"},
	{Group: "cert-manager.io", Version: "v1", Kind: "Issuer"},
	{Group: "monitoring.coreos.com", Version: "v1", Kind: "PodMonitor"},
	{Group: "monitoring.coreos.com", Version: "v1", Kind: "ServiceMonitor"},
}

// Permissions the operator needs on the objects it renders (Istio's base and istiod charts), and on the resources
// istiod's own RBAC grants, which Kubernetes only lets a subject grant when it holds them itself.
// +kubebuilder:rbac:groups="",resources=namespaces;serviceaccounts;configmaps;services,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=apps,resources=deployments;daemonsets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles;clusterrolebindings;roles;rolebindings,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingwebhookconfigurations;validatingwebhookconfigurations,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingadmissionpolicies;validatingadmissionpolicybindings,verbs=get;list;watch;create;update;patch;delete
//
// Granted to the Istio CNI node agent by its ClusterRoles, so the operator must hold them to create those roles: the
// repair controller records events on the pods it repairs, and in ambient mode the agent marks pods' status. The
// operator itself never writes either.
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=pods/status,verbs=update;patch
//
// CRDs: any may be read and created (RBAC cannot restrict create by name; the operator creates only what the catalog
// renders), but update, patch and delete are limited by name to the catalog's CRDs (zz_generated.crdrbac.go).
// +kubebuilder:rbac:groups=apiextensions.k8s.io,resources=customresourcedefinitions,verbs=get;list;watch;create

// SetupWithManager registers the controller and its watches.
func (r *ServiceMeshReconciler) SetupWithManager(mgr ctrl.Manager) error {
	// cert-manager may be installed after the operator starts: a tiny cache that holds only its Certificate CRD (by
	// name, metadata only) wakes every ServiceMesh up when it appears.
	crdCache, err := NewCache(mgr.GetConfig(), cache.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(),
		DefaultFieldSelector: fields.OneTermEqualSelector("metadata.name", certManagerCRD), DefaultTransform: cache.TransformStripManagedFields()})
	if err != nil {
		return err
	}
	if err := mgr.Add(startsWithTheManager{crdCache}); err != nil {
		return err
	}
	crd := &metav1.PartialObjectMetadata{}
	crd.SetGroupVersionKind(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))

	// Revision usage: metadata of injected pods only (label istio.io/rev present) and of namespaces.
	injected, err := labels.Parse(labelRev)
	if err != nil {
		return err
	}
	pod := &metav1.PartialObjectMetadata{}
	pod.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Pod"))
	ns := &metav1.PartialObjectMetadata{}
	ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	// Only labels are read from these: managedFields would be most of what 2,000 pods' metadata holds.
	usageCache, err := NewCache(mgr.GetConfig(), cache.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(),
		ByObject: map[client.Object]cache.ByObject{pod: {Label: injected}}, DefaultTransform: usageMetadata})
	if err != nil {
		return err
	}
	if err := mgr.Add(startsWithTheManager{usageCache}); err != nil {
		return err
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(&meshv1.ServiceMesh{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{},
			predicate.LabelChangedPredicate{}, deletionPredicate{}, statusStateLost{}))).
		Named("servicemesh").
		// The sources (their informers: the operator's own objects, label-filtered, and injected pods' labels) start
		// while the Lease is still being taken, not after: a first install does not wait for both one after the other,
		// and a standby replica that takes over has them synced already. It reconciles nothing until it leads.
		WithOptions(controller.Options{EnableWarmup: ptr.To(true)}).
		// A ServiceMesh stalled by Conflict waits for the one holding the control plane to be gone.
		Watches(&meshv1.ServiceMesh{}, handler.EnqueueRequestsFromMapFunc(r.allMeshes), builder.WithPredicates(deleteOnly{}))
	for _, gvk := range WatchedKinds {
		if gvk == crdGVK {
			// Held as metadata only (syncingCache): a CRD's spec changes with its generation.
			b = b.Watches(crdMetadata(), handler.EnqueueRequestsFromMapFunc(ownerOf), builder.WithPredicates(crdChanged{}))
			continue
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		b = b.Watches(u, handler.EnqueueRequestsFromMapFunc(ownerOf), builder.WithPredicates(renderedObjectChanged{}))
	}
	b = b.WatchesRawSource(source.Kind[client.Object](crdCache, crd, handler.EnqueueRequestsFromMapFunc(r.allMeshes)))
	usageChanged := predicate.Or[client.Object](predicate.LabelChangedPredicate{}, createOrDelete{})
	b = b.WatchesRawSource(source.Kind[client.Object](usageCache, client.Object(pod), r.podEvents(), usageChanged))
	b = b.WatchesRawSource(source.Kind[client.Object](usageCache, client.Object(ns), handler.EnqueueRequestsFromMapFunc(r.allMeshes), usageChanged))
	if r.recheck != nil {
		b = b.WatchesRawSource(source.Channel(r.recheck, handler.EnqueueRequestsFromMapFunc(r.allMeshes)))
	}
	c, err := b.Build(r)
	if err != nil {
		return err
	}
	r.controller, r.cache, r.crdCache, r.usageCache = c, mgr.GetCache(), crdCache, usageCache
	r.watched = map[schema.GroupVersionKind]bool{}
	// The default spec renders a PeerAuthentication: when Istio's CRDs are already served, its informer starts with
	// the others instead of in the middle of the first install (a cache read waits for a new informer's sync).
	r.ensureWatches(context.Background(), "security.istio.io")
	return nil
}

// ensureWatches starts watching the CRD-backed kinds of group whose CRDs are now served. Kinds already watched, and kinds
// still missing, cost nothing more than a map lookup and a RESTMapper lookup.
func (r *ServiceMeshReconciler) ensureWatches(ctx context.Context, group string) {
	r.watchMu.Lock()
	defer r.watchMu.Unlock()
	for _, gvk := range CRDBackedKinds {
		if gvk.Group != group {
			continue
		}
		if r.watched[gvk] || r.controller == nil {
			continue
		}
		if _, err := r.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			continue
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		if err := r.controller.Watch(source.Kind[client.Object](r.cache, u, handler.EnqueueRequestsFromMapFunc(ownerOf),
			renderedObjectChanged{})); err != nil {
			log.FromContext(ctx).Error(err, "Unable to watch", "kind", gvk.String())
			continue
		}
		r.watched[gvk] = true
	}
}

// startsWithTheManager has the manager start a cache of the controller's with its own cache, before the Lease is taken
// (mgr.Add starts a runnable that is not a cache only once the replica leads). The controller's sources on it start
// before the Lease too (EnableWarmup), and their informers list while the Lease is taken instead of after it.
type startsWithTheManager struct{ cache.Cache }

func (c startsWithTheManager) GetCache() cache.Cache { return c.Cache }

// allMeshes maps any event to every ServiceMesh.
func (r *ServiceMeshReconciler) allMeshes(ctx context.Context, _ client.Object) []reconcile.Request {
	meshes := &meshv1.ServiceMeshList{}
	if err := r.List(ctx, meshes); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(meshes.Items))
	for _, m := range meshes.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: m.Name}})
	}
	return out
}

// ownerOf maps a rendered object to its ServiceMesh through the owner label.
func ownerOf(_ context.Context, o client.Object) []reconcile.Request {
	if owner := o.GetLabels()[render.LabelOwner]; owner != "" {
		return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: owner}}}
	}
	return nil
}

// renderedObjectChanged passes creates, deletes and updates that change something Meshwright cares about. It drops
// updates that touch only bookkeeping (resourceVersion, managedFields) or the webhook fields istiod owns, so that
// istiod patching its CA bundle does not cause a reconcile. Workload, Service and Certificate status pass: they are
// assessed.
type renderedObjectChanged struct{ predicate.Funcs }

func (renderedObjectChanged) Create(event.CreateEvent) bool   { return true }
func (renderedObjectChanged) Delete(event.DeleteEvent) bool   { return true }
func (renderedObjectChanged) Generic(event.GenericEvent) bool { return false }

func (renderedObjectChanged) Update(e event.UpdateEvent) bool {
	oldU, ok1 := e.ObjectOld.(*unstructured.Unstructured)
	newU, ok2 := e.ObjectNew.(*unstructured.Unstructured)
	if !ok1 || !ok2 {
		return true
	}
	return !renderedEqual(oldU, newU)
}

// crdChanged passes creates, deletes and the updates of a CRD that change its spec (its generation), labels,
// annotations, owners or deletion; not the API server's status updates while it establishes the CRD.
type crdChanged struct{ predicate.Funcs }

func (crdChanged) Create(event.CreateEvent) bool   { return true }
func (crdChanged) Delete(event.DeleteEvent) bool   { return true }
func (crdChanged) Generic(event.GenericEvent) bool { return false }

func (crdChanged) Update(e event.UpdateEvent) bool {
	a, b := e.ObjectOld, e.ObjectNew
	return a.GetGeneration() != b.GetGeneration() || !maps.Equal(a.GetLabels(), b.GetLabels()) ||
		!maps.Equal(a.GetAnnotations(), b.GetAnnotations()) || !equality.Semantic.DeepEqual(a.GetOwnerReferences(), b.GetOwnerReferences()) ||
		!a.GetDeletionTimestamp().Equal(b.GetDeletionTimestamp()) || !slices.Equal(a.GetFinalizers(), b.GetFinalizers())
}

// statusKinds are the kinds whose status Meshwright assesses: workload rollouts, gateways' Service addresses and
// cert-manager's Certificates. A change to any other kind's status wakes no reconcile.
var statusKinds = []string{"Deployment", "DaemonSet", "StatefulSet", "Service", certificateGVK.Kind}

// renderedEqual reports whether two states of a live object differ in nothing renderedObjectChanged heeds: it ignores
// metadata's resourceVersion, generation and managedFields, the status of kinds not in statusKinds, and webhooks'
// failurePolicy and CA bundle (istiod patches both). It reads both objects in place, never copying them: the cache
// hands the predicate its own objects.
func renderedEqual(a, b *unstructured.Unstructured) bool {
	kind := b.GetKind()
	return mapsEqualExcept(a.Object, b.Object, func(key string, x, y any) (bool, bool) {
		switch key {
		case "status":
			if !slices.Contains(statusKinds, kind) {
				return true, true
			}
		case "metadata":
			xm, _ := x.(map[string]any)
			ym, _ := y.(map[string]any)
			return mapsEqualExcept(xm, ym, ignoreKeys("resourceVersion", "generation", "managedFields")), true
		case "webhooks":
			return webhooksEqual(x, y), true
		}
		return false, false
	})
}

// mapsEqualExcept compares two maps key by key; decide may settle a key itself (settled), saying whether its values
// count as equal; the values of every other key are compared semantically.
func mapsEqualExcept(x, y map[string]any, decide func(key string, xv, yv any) (equal, settled bool)) bool {
	same := func(k string, v, w any, both bool) bool {
		if equal, settled := decide(k, v, w); settled {
			return equal
		}
		return both && equality.Semantic.DeepEqual(v, w)
	}
	for k, v := range x {
		w, ok := y[k]
		if !same(k, v, w, ok) {
			return false
		}
	}
	for k, w := range y {
		if _, ok := x[k]; !ok && !same(k, nil, w, false) {
			return false
		}
	}
	return true
}

func ignoreKeys(keys ...string) func(string, any, any) (bool, bool) {
	return func(key string, _, _ any) (bool, bool) { return true, slices.Contains(keys, key) }
}

// webhooksEqual compares two webhook lists ignoring each webhook's failurePolicy and clientConfig.caBundle.
func webhooksEqual(x, y any) bool {
	xs, _ := x.([]any)
	ys, _ := y.([]any)
	if len(xs) != len(ys) {
		return false
	}
	for i := range xs {
		xm, _ := xs[i].(map[string]any)
		ym, _ := ys[i].(map[string]any)
		if !mapsEqualExcept(xm, ym, func(key string, xv, yv any) (bool, bool) {
			switch key {
			case "failurePolicy":
				return true, true
			case "clientConfig":
				xc, _ := xv.(map[string]any)
				yc, _ := yv.(map[string]any)
				return mapsEqualExcept(xc, yc, ignoreKeys("caBundle")), true
			}
			return false, false
		}) {
			return false
		}
	}
	return true
}

// usageMetadata keeps, of an injected pod's or a namespace's metadata, what is read from the usage cache (name,
// namespace, labels) and what the cache itself needs (uid, resourceVersion, deletionTimestamp). The rest is most of
// an injected pod's metadata (the injector's status annotation, owner references, managedFields), held for every
// injected pod of the cluster.
func usageMetadata(in any) (any, error) {
	if m, ok := in.(*metav1.PartialObjectMetadata); ok {
		m.ObjectMeta = metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
			Labels: m.Labels, DeletionTimestamp: m.DeletionTimestamp}
	}
	return in, nil
}

// createOrDelete passes creations and deletions only.
type createOrDelete struct{ predicate.Funcs }

func (createOrDelete) Create(event.CreateEvent) bool   { return true }
func (createOrDelete) Delete(event.DeleteEvent) bool   { return true }
func (createOrDelete) Update(event.UpdateEvent) bool   { return false }
func (createOrDelete) Generic(event.GenericEvent) bool { return false }

// deleteOnly passes deletions only.
type deleteOnly struct{ predicate.Funcs }

func (deleteOnly) Create(event.CreateEvent) bool   { return false }
func (deleteOnly) Delete(event.DeleteEvent) bool   { return true }
func (deleteOnly) Update(event.UpdateEvent) bool   { return false }
func (deleteOnly) Generic(event.GenericEvent) bool { return false }

// usageRefresh is how long the injected pods' events may wait before a mesh that nothing waits on pods for is
// reconciled: they then change only status.revisions[].inUsePods, and coalescing them keeps a cluster's pod churn (a
// scale-out, a batch job, a node drain) from becoming a stream of reconciles and status writes. At most one status write
// per usageRefresh comes from pods.
const usageRefresh = 15 * time.Second

// podEvents enqueues every mesh on an injected pod's creation, deletion or relabelling: at once for a mesh whose
// progress depends on pods (a workload rollout, a revision waiting to be retired, a mesh not reconciled yet), else
// after usageRefresh (the queue keeps one pending request per mesh, so events in between add nothing).
func (r *ServiceMeshReconciler) podEvents() handler.TypedEventHandler[client.Object, reconcile.Request] {
	enqueue := func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		for _, req := range r.allMeshes(ctx, nil) {
			if r.waitsOnPods(req.Name) {
				q.Add(req)
			} else {
				q.AddAfter(req, usageRefresh)
			}
		}
	}
	return handler.TypedFuncs[client.Object, reconcile.Request]{
		CreateFunc: func(ctx context.Context, _ event.TypedCreateEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, q)
		},
		UpdateFunc: func(ctx context.Context, _ event.TypedUpdateEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, q)
		},
		DeleteFunc: func(ctx context.Context, _ event.TypedDeleteEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, q)
		},
	}
}

// waitsOnPods reports whether the last reconcile of a mesh left it waiting on injected pods. A mesh not reconciled
// yet counts as waiting.
func (r *ServiceMeshReconciler) waitsOnPods(mesh string) bool {
	waits, ok := r.podWaits.Load(mesh)
	return !ok || waits.(bool)
}

// notePodWaits records, after a reconcile, whether the mesh's progress depends on injected pods: a revision other
// than the active one is still listed (it is retired once no pod uses it), or a workload rollout has work left.
func (r *ServiceMeshReconciler) notePodWaits(mesh *meshv1.ServiceMesh) {
	st := mesh.Status
	waits := len(st.Revisions) > 1 || st.ActiveRevision == "" ||
		(st.WorkloadRollout != nil && (st.WorkloadRollout.Pending > 0 || len(st.WorkloadRollout.InProgress) > 0 || len(st.WorkloadRollout.Pinned) > 0))
	r.podWaits.Store(mesh.Name, waits)
}
