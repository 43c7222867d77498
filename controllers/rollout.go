package controllers

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/readiness"
	"github.com/meshwright/meshwright/internal/status"
)

// +kubebuilder:rbac:groups=apps,resources=statefulsets;daemonsets,verbs=get;list;watch;patch

// AnnotationRestartedFor marks a workload's pod template with the revision Meshwright restarted it for. Changing the
// template restarts the pods (as `kubectl rollout restart` does); the value makes the restart happen once per upgrade.
const AnnotationRestartedFor = "mesh.meshwright.dev/restarted-for"

// AnnotationRestartedAt records on the pod template when Meshwright restarted the workload (RFC 3339), so that a
// restart that never finishes rolling out is noticed even across operator restarts.
const AnnotationRestartedAt = "mesh.meshwright.dev/restarted-at"

// rolloutRecheckWorkloads bounds how long a workload rollout waits between steps if a watch event is missed.
const rolloutRecheckWorkloads = 5 * time.Second

// workload is a Deployment, StatefulSet or DaemonSet seen through what the rollout needs.
type workload struct {
	obj       client.Object
	id        string
	selector  *metav1.LabelSelector
	template  *corev1.PodTemplateSpec
	rolledOut bool
}

// rolloutWorkloads restarts, at most maxConcurrent at a time, the workloads whose pods still run an old revision,
// once the tags point at the new one, so their new pods are injected by it. It waits for each restarted workload to
// finish rolling out before it starts the next. It only lists workloads in namespaces that have old pods, and only
// while an upgrade is moving workloads.
func (r *ServiceMeshReconciler) rolloutWorkloads(ctx context.Context, s *scope) (ctrl.Result, error) {
	us := s.mesh.Spec.UpdateStrategy
	if !revisionBased(s.mesh) || us.WorkloadRollout == nil || !us.WorkloadRollout.Enabled || s.tagTarget != s.desiredRevision {
		return ctrl.Result{}, nil
	}
	var oldRevs []string
	for _, rs := range s.mesh.Status.Revisions {
		if rs.Name != s.tagTarget && rs.InUsePods > 0 {
			oldRevs = append(oldRevs, rs.Name)
		}
	}
	if len(oldRevs) == 0 {
		if ro := s.mesh.Status.WorkloadRollout; ro != nil && (ro.Pending > 0 || len(ro.InProgress) > 0) {
			ro.Pending, ro.InProgress = 0, nil
		}
		return ctrl.Result{}, nil
	}
	candidates, err := r.workloadsOnRevisions(ctx, oldRevs)
	if err != nil {
		return ctrl.Result{}, err
	}

	rollout := s.mesh.Status.WorkloadRollout
	if rollout == nil || rollout.Revision != s.tagTarget {
		rollout = &meshv1.WorkloadRolloutStatus{Revision: s.tagTarget}
	}
	var pending, inProgress, pinned []workload
	for _, w := range candidates {
		switch {
		case w.template.Annotations[AnnotationRestartedFor] != s.tagTarget:
			pending = append(pending, w)
		case !w.rolledOut:
			inProgress = append(inProgress, w)
		default:
			pinned = append(pinned, w) // restarted and rolled out, yet its pods still run an old revision
		}
	}
	// A restarted workload keeps its slot until its rollout finishes, even once none of its pods run an old revision
	// any more (the last old pods go before the new ones are all available).
	stillRolling, err := r.stillRolling(ctx, rollout.InProgress, candidates, s.tagTarget)
	if err != nil {
		return ctrl.Result{}, err
	}
	inProgress = append(inProgress, stillRolling...)
	if late := overdue(inProgress, r.Now(), readinessTimeout(s.mesh)); len(late) > 0 {
		// Stop restarting: a workload that cannot roll out on the new revision may mean the new proxy breaks it.
		rollout.Pending, rollout.InProgress, rollout.Pinned = int32(len(pending)), ids(inProgress), ids(pinned)
		s.mesh.Status.WorkloadRollout = rollout
		s.outcome = status.Outcome{Reason: meshv1.ReasonWorkloadRolloutFailed, Stalled: true, Message: fmt.Sprintf(
			"Workload rollout onto revision %s paused: %s did not finish rolling out within %s of its restart; %d workloads wait. "+
				"Fix the workload (kubectl rollout status); the rollout resumes once it is rolled out", s.tagTarget,
			strings.Join(ids(late), ", "), readinessTimeout(s.mesh), len(pending))}
		return ctrl.Result{RequeueAfter: rolloutRecheckWorkloads}, nil
	}
	max := int(ptrOr(us.WorkloadRollout.MaxConcurrent, 1))
	for len(inProgress) < max && len(pending) > 0 {
		w := pending[0]
		pending = pending[1:]
		patch := client.MergeFrom(w.obj.DeepCopyObject().(client.Object))
		if w.template.Annotations == nil {
			w.template.Annotations = map[string]string{}
		}
		w.template.Annotations[AnnotationRestartedFor] = s.tagTarget
		w.template.Annotations[AnnotationRestartedAt] = r.Now().UTC().Format(time.RFC3339)
		if err := r.Patch(ctx, w.obj, patch); err != nil {
			return ctrl.Result{}, fmt.Errorf("restarting %s: %w", w.id, err)
		}
		r.Recorder.Eventf(s.mesh, nil, "Normal", "WorkloadRestarted", "Upgrade", "Restarted %s onto revision %s", w.id, s.tagTarget)
		rollout.Restarted++
		inProgress = append(inProgress, w)
	}
	rollout.Pending = int32(len(pending))
	rollout.InProgress = ids(inProgress)
	rollout.Pinned = ids(pinned)
	s.mesh.Status.WorkloadRollout = rollout
	if len(pending)+len(inProgress) == 0 {
		return ctrl.Result{}, nil
	}
	msg := fmt.Sprintf("Moving workloads to revision %s: %d restarting, %d waiting, %d done", s.tagTarget,
		len(inProgress), len(pending), rollout.Restarted-int32(len(inProgress)))
	status.SetComponent(s.mesh, meshv1.ConditionControlPlaneReady, true, meshv1.ReasonReady, "revision "+s.tagTarget+" ready")
	s.outcome = status.Outcome{Reason: meshv1.ReasonUpgrading, Message: msg, Reconciling: true}
	return ctrl.Result{RequeueAfter: rolloutRecheckWorkloads}, nil
}

// overdue returns the restarted workloads still rolling out more than timeout after their restart. The annotation has
// whole seconds, so a second is added: the timeout is never cut short.
func overdue(restarted []workload, now time.Time, timeout time.Duration) []workload {
	var out []workload
	for _, w := range restarted {
		at, err := time.Parse(time.RFC3339, w.template.Annotations[AnnotationRestartedAt])
		if err == nil && !w.rolledOut && now.Sub(at) >= timeout+time.Second {
			out = append(out, w)
		}
	}
	return out
}

// stillRolling returns the workloads of previous (IDs) that are not among candidates, were restarted for target, and
// have not finished rolling out.
func (r *ServiceMeshReconciler) stillRolling(ctx context.Context, previous []string, candidates []workload, target string) ([]workload, error) {
	var out []workload
	byNamespace := map[string][]workload{}
	for _, id := range previous {
		if slices.ContainsFunc(candidates, func(w workload) bool { return w.id == id }) {
			continue
		}
		parts := strings.SplitN(id, "/", 3)
		if len(parts) != 3 {
			continue
		}
		ws, ok := byNamespace[parts[1]]
		if !ok {
			var err error
			if ws, err = r.listWorkloads(ctx, parts[1]); err != nil {
				return nil, err
			}
			byNamespace[parts[1]] = ws
		}
		for _, w := range ws {
			if w.id == id && w.template.Annotations[AnnotationRestartedFor] == target && !w.rolledOut {
				out = append(out, w)
			}
		}
	}
	return out, nil
}

// workloadsOnRevisions returns the workloads that own pods of the given revisions, sorted by ID.
func (r *ServiceMeshReconciler) workloadsOnRevisions(ctx context.Context, revisions []string) ([]workload, error) {
	req, err := labels.NewRequirement(labelRev, selection.In, revisions)
	if err != nil {
		return nil, err
	}
	pods := &metav1.PartialObjectMetadataList{}
	pods.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("PodList"))
	if err := r.usageCache.List(ctx, pods, client.MatchingLabelsSelector{Selector: labels.NewSelector().Add(*req)}); err != nil {
		return nil, fmt.Errorf("listing pods of revisions %v: %w", revisions, err)
	}
	podsByNamespace := map[string][]labels.Set{}
	for _, p := range pods.Items {
		if p.Labels["app"] == "istiod" {
			continue // istiod itself, never restarted by a workload rollout
		}
		podsByNamespace[p.Namespace] = append(podsByNamespace[p.Namespace], p.Labels)
	}
	var out []workload
	for ns, podLabels := range podsByNamespace {
		all, err := r.listWorkloads(ctx, ns)
		if err != nil {
			return nil, err
		}
		for _, w := range all {
			sel, err := metav1.LabelSelectorAsSelector(w.selector)
			if err != nil || sel.Empty() {
				continue
			}
			if slices.ContainsFunc(podLabels, func(l labels.Set) bool { return sel.Matches(l) }) {
				out = append(out, w)
			}
		}
	}
	slices.SortFunc(out, func(a, b workload) int { return cmp.Compare(a.id, b.id) })
	return out, nil
}

// listWorkloads reads a namespace's workloads straight from the API server: this runs only during a workload
// rollout, so caching every Deployment of the cluster for it would cost more than it saves.
func (r *ServiceMeshReconciler) listWorkloads(ctx context.Context, ns string) ([]workload, error) {
	var out []workload
	deps := &appsv1.DeploymentList{}
	if err := r.APIReader.List(ctx, deps, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing Deployments in %s: %w", ns, err)
	}
	for i := range deps.Items {
		d := &deps.Items[i]
		done, _ := readiness.Deployment(d)
		out = append(out, workload{obj: d, id: "Deployment/" + ns + "/" + d.Name, selector: d.Spec.Selector, template: &d.Spec.Template, rolledOut: done})
	}
	sets := &appsv1.StatefulSetList{}
	if err := r.APIReader.List(ctx, sets, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing StatefulSets in %s: %w", ns, err)
	}
	for i := range sets.Items {
		st := &sets.Items[i]
		want := ptrOr(st.Spec.Replicas, 1)
		done := st.Status.ObservedGeneration >= st.Generation && st.Status.UpdatedReplicas == want &&
			st.Status.ReadyReplicas == want && st.Status.CurrentRevision == st.Status.UpdateRevision
		out = append(out, workload{obj: st, id: "StatefulSet/" + ns + "/" + st.Name, selector: st.Spec.Selector, template: &st.Spec.Template, rolledOut: done})
	}
	daemons := &appsv1.DaemonSetList{}
	if err := r.APIReader.List(ctx, daemons, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing DaemonSets in %s: %w", ns, err)
	}
	for i := range daemons.Items {
		ds := &daemons.Items[i]
		done := ds.Status.ObservedGeneration >= ds.Generation && ds.Status.UpdatedNumberScheduled == ds.Status.DesiredNumberScheduled &&
			ds.Status.NumberAvailable == ds.Status.DesiredNumberScheduled
		out = append(out, workload{obj: ds, id: "DaemonSet/" + ns + "/" + ds.Name, selector: ds.Spec.Selector, template: &ds.Spec.Template, rolledOut: done})
	}
	return out, nil
}

func ids(ws []workload) []string {
	out := make([]string, 0, len(ws))
	for _, w := range ws {
		out = append(out, w.id)
	}
	return out
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
