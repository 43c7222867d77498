package controllers

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/apply"
	"github.com/meshwright/meshwright/internal/istio"
	"github.com/meshwright/meshwright/internal/readiness"
	"github.com/meshwright/meshwright/internal/render"
	"github.com/meshwright/meshwright/internal/status"
)

// Istio's injection labels.
const (
	labelRev       = "istio.io/rev"
	labelInjection = "istio-injection"
	defaultTag     = "default"
)

// Defaults of the RevisionBased strategy.
const (
	defaultGracePeriod      = 30 * time.Second
	defaultReadinessTimeout = 10 * time.Minute
)

func revisionBased(mesh *meshv1.ServiceMesh) bool {
	return mesh.Spec.UpdateStrategy != nil && mesh.Spec.UpdateStrategy.Type == meshv1.UpdateStrategyRevisionBased
}

// RevisionName is the revision a RevisionBased mesh runs a version as, e.g. "default-1-31-0".
func RevisionName(mesh string, v istio.Version) string { return mesh + "-" + v.RevisionSuffix() }

// planRevisions decides which istiod revisions to render and which one the revision tags point to. InPlace has one
// revision, upgraded in place. RevisionBased keeps every revision that is live or listed in status beside the desired
// one; the tags stay where the live tag webhook points until the desired revision is ready, and then move to it.
func (r *ServiceMeshReconciler) planRevisions(ctx context.Context, s *scope) (ctrl.Result, error) {
	if !revisionBased(s.mesh) {
		s.revisions = inPlaceRevisions(s.version)
		s.desiredRevision, s.tagTarget = "", ""
		return ctrl.Result{}, nil
	}
	s.desiredRevision = RevisionName(s.mesh.Name, s.version)
	known := slices.Clone(s.mesh.Status.Revisions)
	if !slices.ContainsFunc(known, func(rs meshv1.RevisionStatus) bool { return rs.Name == s.desiredRevision }) {
		known = append(known, meshv1.RevisionStatus{Name: s.desiredRevision, Version: s.version.Version,
			CreatedAt: &metav1.Time{Time: r.Now().Truncate(time.Second)}})
	}
	s.tagTarget = r.tagTarget(ctx, s, known)
	if s.live.tagTarget != "" && s.live.tagTarget != s.tagTarget {
		s.tagsMovedFrom = s.live.tagTarget
	}
	tags := append([]string{defaultTag}, revisionTags(s.mesh)...)
	s.revisions = nil
	for _, rs := range known {
		// A revision keeps its exact version even past its end of life: the clock never changes what runs.
		v, ok := r.Catalog().Lookup(rs.Version)
		if !ok {
			continue // no longer embedded: its objects stay as they are until it is unused
		}
		rev := render.Revision{Name: rs.Name, Version: v}
		if rs.Name == s.tagTarget {
			rev.Tags = tags
		}
		s.revisions = append(s.revisions, rev)
	}
	s.mesh.Status.Revisions = known
	return ctrl.Result{}, nil
}

// tagTarget picks the revision the tags point to: the desired one once its istiod is ready (the switch point of an
// upgrade), else where the live tag webhook points, else where status says (the webhook was deleted), else the newest
// ready revision; a mesh with none of these (a new one) gets the desired revision.
func (r *ServiceMeshReconciler) tagTarget(ctx context.Context, s *scope, known []meshv1.RevisionStatus) string {
	isKnown := func(name string) bool {
		return name != "" && slices.ContainsFunc(known, func(rs meshv1.RevisionStatus) bool { return rs.Name == name })
	}
	ready := func(name string) bool {
		ok, _ := r.istiodReady(ctx, s.mesh.Spec.Namespace, "istiod-"+name)
		return ok
	}
	switch {
	case ready(s.desiredRevision):
		return s.desiredRevision
	case isKnown(s.live.tagTarget):
		return s.live.tagTarget
	case isKnown(s.mesh.Status.ActiveRevision):
		return s.mesh.Status.ActiveRevision
	}
	byVersion := slices.Clone(known)
	slices.SortFunc(byVersion, func(a, b meshv1.RevisionStatus) int { return istio.CompareVersions(b.Version, a.Version) })
	for _, rs := range byVersion {
		if rs.Name != s.desiredRevision && ready(rs.Name) {
			return rs.Name
		}
	}
	return s.desiredRevision
}

func revisionTags(mesh *meshv1.ServiceMesh) []string {
	if mesh.Spec.Injection == nil {
		return nil
	}
	return slices.DeleteFunc(slices.Clone(mesh.Spec.Injection.RevisionTags), func(t string) bool { return t == defaultTag })
}

// assessRevisions reads each revision's istiod rollout and usage, moves the tags to the desired revision once it is
// ready (the switch point of an upgrade), reports a failed upgrade after the readiness timeout, and retires
// revisions that nothing has used for the grace period. It returns whether the desired revision is ready.
func (r *ServiceMeshReconciler) assessRevisions(ctx context.Context, s *scope) (ready bool, message string, result ctrl.Result, err error) {
	now := r.Now()
	if s.tagsMovedFrom != "" {
		r.Recorder.Eventf(s.mesh, nil, "Normal", "TagsMoved", "Upgrade", "Revision tags moved from %s to %s", s.tagsMovedFrom, s.tagTarget)
	}
	var kept []meshv1.RevisionStatus
	rollout := map[string]string{} // revision → what its istiod rollout is waiting for
	for _, rs := range s.mesh.Status.Revisions {
		rs.Ready, rollout[rs.Name] = r.istiodReady(ctx, s.mesh.Spec.Namespace, "istiod-"+rs.Name)
		if rs.InUsePods, rs.InUseNamespaces, err = r.usage(ctx, s, rs.Name); err != nil {
			return false, "", result, err
		}
		active := rs.Name == s.desiredRevision || rs.Name == s.tagTarget
		switch {
		case active || rs.InUsePods > 0 || rs.InUseNamespaces > 0:
			rs.InactiveSince = nil
		case rs.InactiveSince == nil:
			// Status keeps whole seconds: round up, so the grace period is never cut short.
			rs.InactiveSince = &metav1.Time{Time: now.Add(time.Second - 1).Truncate(time.Second)}
			result = soonest(result, gracePeriod(s.mesh))
		case now.Sub(rs.InactiveSince.Time) >= gracePeriod(s.mesh):
			r.Recorder.Eventf(s.mesh, nil, "Normal", "RevisionRemoved", "Prune",
				"Removing revision %s (Istio %s): unused since %s", rs.Name, rs.Version, rs.InactiveSince.Format(time.RFC3339))
			if err := r.retireRevision(ctx, s, rs.Name); err != nil {
				s.outcome = status.Outcome{Reason: meshv1.ReasonApplyFailed, Message: err.Error(), Reconciling: true}
				return false, "", result, err // status keeps the revision, and when it became inactive
			}
			result = soonest(result, time.Millisecond) // re-render without it
			continue
		default:
			result = soonest(result, gracePeriod(s.mesh)-now.Sub(rs.InactiveSince.Time))
		}
		kept = append(kept, rs)
	}
	s.mesh.Status.Revisions = kept

	desired := s.revisionStatus(s.desiredRevision)
	if desired == nil {
		return false, "desired revision missing from status", result, nil
	}
	if !desired.Ready {
		message = rollout[desired.Name]
		result = soonest(result, rolloutRecheck)
		if s.tagTarget != s.desiredRevision && desired.CreatedAt != nil {
			left := readinessTimeout(s.mesh) - now.Sub(desired.CreatedAt.Time)
			if left < 0 {
				s.upgradeFailed = fmt.Sprintf("Revision %s (Istio %s) did not become ready within %s; the revision tags stay on %s, which keeps serving. "+
					"Fix the cause or set spec.version back. Last state: %s", desired.Name, desired.Version, readinessTimeout(s.mesh), s.tagTarget, message)
			} else {
				result = soonest(result, left+time.Second)
			}
		}
		return false, message, result, nil
	}
	if s.tagTarget != s.desiredRevision {
		// The desired revision became ready after this reconcile planned the tags: the next one moves them.
		return false, "moving the revision tags to " + s.desiredRevision, soonest(result, time.Millisecond), nil
	}
	return true, fmt.Sprintf("revision %s ready", desired.Name), result, nil
}

// retireRevision deletes the objects of a revision at once, webhooks first, and drops them from the inventory. They
// must be gone before the next reconcile reads what is live, or it would find the revision and restore it.
func (r *ServiceMeshReconciler) retireRevision(ctx context.Context, s *scope, name string) error {
	entries := slices.Clone(s.live.byRevision[name])
	for _, o := range s.objects {
		if o.GetLabels()[render.LabelRevision] == name {
			entries = append(entries, apply.IDOf(o).String())
		}
	}
	entries = union(entries, nil)
	remaining, err := r.applier(s.mesh).Delete(ctx, orderForDeletion(entries, nil))
	if inv := s.mesh.Status.Inventory; inv != nil {
		deleted := apply.Stale(entries, remaining)
		s.mesh.Status.Inventory = &meshv1.Inventory{Entries: apply.Stale(inv.Entries, deleted)}
	}
	if err != nil {
		return fmt.Errorf("removing revision %s: %w", name, err)
	}
	return nil
}

func (s *scope) revisionStatus(name string) *meshv1.RevisionStatus {
	for i := range s.mesh.Status.Revisions {
		if s.mesh.Status.Revisions[i].Name == name {
			return &s.mesh.Status.Revisions[i]
		}
	}
	return nil
}

func (r *ServiceMeshReconciler) istiodReady(ctx context.Context, namespace, name string) (bool, string) {
	// Unstructured: the informer the applier and its watch already run (a typed read would start a second one).
	dep := &unstructured.Unstructured{}
	dep.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("Deployment"))
	if err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, dep); err != nil {
		if apierrors.IsNotFound(err) {
			return false, fmt.Sprintf("Deployment %s/%s not found yet", namespace, name)
		}
		return false, err.Error()
	}
	ready, msg, _ := readiness.Workload(dep)
	return ready, msg
}

// usage counts the pods injected by a revision and the namespaces that select it, from a label-filtered metadata
// cache (never a cluster-wide pod list per reconcile).
func (r *ServiceMeshReconciler) usage(ctx context.Context, s *scope, revision string) (pods, namespaces int32, err error) {
	if r.usageCache == nil {
		return 0, 0, nil
	}
	podList := &metav1.PartialObjectMetadataList{}
	podList.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("PodList"))
	if err := r.usageCache.List(ctx, podList, client.MatchingLabels{labelRev: revision}, client.UnsafeDisableDeepCopy); err != nil {
		return 0, 0, fmt.Errorf("counting pods of revision %s: %w", revision, err)
	}
	if s.namespaces == nil {
		nsList := &metav1.PartialObjectMetadataList{}
		nsList.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NamespaceList"))
		if err := r.usageCache.List(ctx, nsList, client.UnsafeDisableDeepCopy); err != nil {
			return 0, 0, fmt.Errorf("listing namespaces: %w", err)
		}
		s.namespaces = nsList
	}
	isTarget := revision == cmp.Or(s.tagTarget, "default")
	tags := append([]string{defaultTag}, revisionTags(s.mesh)...)
	for _, ns := range s.namespaces.Items {
		rev, injection := ns.Labels[labelRev], ns.Labels[labelInjection]
		switch {
		case rev == revision && rev != "":
			namespaces++
		case isTarget && rev == "" && injection == "enabled":
			namespaces++
		case isTarget && revisionBased(s.mesh) && slices.Contains(tags, rev):
			namespaces++
		}
	}
	for _, p := range podList.Items {
		// istiod's own pods carry their revision label too; they serve the revision, they do not use it.
		if p.Namespace == s.mesh.Spec.Namespace && p.Labels["app"] == "istiod" {
			continue
		}
		pods++
	}
	return pods, namespaces, nil
}

func gracePeriod(mesh *meshv1.ServiceMesh) time.Duration {
	if us := mesh.Spec.UpdateStrategy; us != nil && us.InactiveRevisionDeletionGracePeriodSeconds != nil {
		return time.Duration(*us.InactiveRevisionDeletionGracePeriodSeconds) * time.Second
	}
	return defaultGracePeriod
}

func readinessTimeout(mesh *meshv1.ServiceMesh) time.Duration {
	if us := mesh.Spec.UpdateStrategy; us != nil && us.ReadinessTimeout != nil {
		return us.ReadinessTimeout.Duration
	}
	return defaultReadinessTimeout
}

// soonest returns the result that requeues first.
func soonest(res ctrl.Result, after time.Duration) ctrl.Result {
	if after <= 0 {
		after = time.Millisecond
	}
	if res.RequeueAfter == 0 || after < res.RequeueAfter {
		res.RequeueAfter = after
	}
	return res
}

// inPlaceRevisions is the one istiod an InPlace mesh runs: the default revision, of its version.
func inPlaceRevisions(v istio.Version) []render.Revision { return []render.Revision{{Version: v}} }
