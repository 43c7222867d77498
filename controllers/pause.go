package controllers

import (
	"cmp"
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	ctrl "sigs.k8s.io/controller-runtime"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/status"
)

// paused reports whether the mesh carries meshv1.AnnotationPaused "true".
func paused(mesh *meshv1.ServiceMesh) bool {
	return mesh.Annotations[meshv1.AnnotationPaused] == "true"
}

// reconcilePaused writes nothing but the ServiceMesh's status: no apply, no prune, no tag move, no workload restart, no
// finalizer change. Drift is left alone and spec changes wait until the annotation is removed, which resumes a normal
// reconcile that repairs what drifted. A paused mesh that is deleted waits too: a pause is asked for during an
// incident, and a deletion (perhaps a GitOps prune) must not tear the control plane down in the middle of a hotfix; as
// with Cluster API's paused objects, the deletion proceeds once the pause is lifted.
func (r *ServiceMeshReconciler) reconcilePaused(ctx context.Context, mesh *meshv1.ServiceMesh) (ctrl.Result, error) {
	before := mesh.DeepCopy()
	if meta.FindStatusCondition(mesh.Status.Conditions, meshv1.ConditionPaused) == nil {
		r.Recorder.Eventf(mesh, nil, "Normal", "Paused", "Pause", "Paused by the annotation %s: Meshwright writes nothing until it is removed",
			meshv1.AnnotationPaused)
	}
	msg := fmt.Sprintf("The annotation %s is \"true\": Meshwright writes none of the mesh's objects (no apply, prune, "+
		"revision tag move or workload restart) and leaves drift alone until it is removed", meshv1.AnnotationPaused)
	if !mesh.DeletionTimestamp.IsZero() {
		msg += "; the deletion of this ServiceMesh waits until then"
	}
	serving := "istiod"
	if revisionBased(mesh) {
		// The istiod the default revision tag points at, read from what is live (status may have been wiped).
		live, err := r.readLive(ctx, mesh)
		if err != nil {
			return ctrl.Result{}, err
		}
		serving = "istiod-" + cmp.Or(live.tagTarget, mesh.Status.ActiveRevision)
	}
	ready, servingMessage := r.istiodReady(ctx, mesh.Spec.Namespace, serving)
	status.Pause(mesh, ready, servingMessage, msg)
	return ctrl.Result{}, r.patchStatus(ctx, before, mesh)
}

// resume ends a pause: the Paused condition goes at once, with an event, whether the mesh goes on to reconcile or to
// be deleted.
func (r *ServiceMeshReconciler) resume(ctx context.Context, mesh *meshv1.ServiceMesh) error {
	if meta.FindStatusCondition(mesh.Status.Conditions, meshv1.ConditionPaused) == nil {
		return nil
	}
	before := mesh.DeepCopy()
	meta.RemoveStatusCondition(&mesh.Status.Conditions, meshv1.ConditionPaused)
	if err := r.patchStatus(ctx, before, mesh); err != nil {
		return fmt.Errorf("resuming: %w", err)
	}
	r.Recorder.Eventf(mesh, nil, "Normal", "Resumed", "Resume", "The annotation %s was removed: reconciling again", meshv1.AnnotationPaused)
	return nil
}
