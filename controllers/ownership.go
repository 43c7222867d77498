package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrl "sigs.k8s.io/controller-runtime"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/apply"
	"github.com/meshwright/meshwright/internal/render"
	"github.com/meshwright/meshwright/internal/status"
)

// Bounds of the recheck of an ownership conflict. The conflicting objects carry no Meshwright label, so no watch sees
// them deleted or annotated: the reconcile polls, soon at first (a user fixing it right away sees the mesh proceed
// within seconds), then every conflictRecheckMax. Any change to the ServiceMesh (an annotation will do) rechecks at once.
const (
	conflictRecheckMin = 2 * time.Second
	conflictRecheckMax = 30 * time.Second
)

// checkOwnership makes sure, before the first write, that every rendered object is Meshwright's to write: absent,
// labelled as this mesh's, annotated for adoption by it, or one of the kinds Meshwright never owns (an existing
// Namespace is used as it is; an existing Istio CRD is updated and marked pre-existing). Any other live object is a
// conflict: the mesh stalls naming every such object, and nothing is written. The CA Secrets cert-manager writes for
// the rendered Certificates are checked too: cert-manager would overwrite a user's Secret of that name (a "cacerts"
// of their own) and Meshwright would delete it with the mesh.
func (r *ServiceMeshReconciler) checkOwnership(ctx context.Context, s *scope) (ctrl.Result, error) {
	claims, err := r.applier(s.mesh).Check(ctx, append(slices.Clone(s.objects), render.CASecrets(s.objects)...))
	if err != nil {
		return r.conflictOr(s, err)
	}
	s.claims = claims
	// A Namespace that existed before is neither applied nor inventoried, so prune and delete never consider it.
	if len(claims.IDs(apply.ClaimUseAsIs)) > 0 {
		s.objects = slices.DeleteFunc(slices.Clone(s.objects), func(o *unstructured.Unstructured) bool {
			return claims[apply.IDOf(o)] == apply.ClaimUseAsIs
		})
	}
	return ctrl.Result{}, nil
}

// conflictOr turns an ownership conflict into a Stalled outcome with a recheck (not a terminal error: deleting or
// annotating the objects resolves it without a change to the mesh); any other error is returned as it is.
func (r *ServiceMeshReconciler) conflictOr(s *scope, err error) (ctrl.Result, error) {
	var conflict *apply.ConflictError
	if !errors.As(err, &conflict) {
		return ctrl.Result{}, err
	}
	after := conflictRecheckMin
	if c := meta.FindStatusCondition(s.mesh.Status.Conditions, meshv1.ConditionStalled); c != nil && c.Reason == meshv1.ReasonConflict {
		// The transition time comes from the real clock (meta.SetStatusCondition), so the elapsed time does too.
		after = min(max(time.Since(c.LastTransitionTime.Time)/2, conflictRecheckMin), conflictRecheckMax)
	}
	s.outcome = status.Outcome{Reason: meshv1.ReasonConflict, Message: conflict.Error(), Stalled: true}
	return ctrl.Result{RequeueAfter: after}, nil
}

// recordOwnership reports the objects an apply took over: adopted objects, and CRDs that existed before.
func (r *ServiceMeshReconciler) recordOwnership(s *scope, res apply.Result) {
	if len(res.Adopted) > 0 {
		r.Recorder.Eventf(s.mesh, nil, "Normal", "Adopted", "Adopt", "Adopted %d objects (annotated %s=%s); Meshwright owns them from now on: %s",
			len(res.Adopted), meshv1.AnnotationAdopt, s.mesh.Name, describeIDs(res.Adopted))
	}
	if len(res.Orphans) > 0 {
		r.Recorder.Eventf(s.mesh, nil, "Normal", "OrphansTakenOver", "Adopt",
			"Took over %d objects Meshwright created for a ServiceMesh that no longer exists: %s", len(res.Orphans), describeIDs(res.Orphans))
	}
	if len(res.PreExisting) > 0 {
		r.Recorder.Eventf(s.mesh, nil, "Normal", "PreExistingCRDsUpdated", "Apply",
			"Updated %d CRDs that existed before Meshwright to the schema of Istio %s; marked %s, they are never deleted: %s",
			len(res.PreExisting), s.version.Version, apply.AnnotationPreExisting, describeIDs(res.PreExisting))
	}
}

// describeIDs names objects for an event, at most ten of them (an event's note is limited to 1 kB).
func describeIDs(ids []apply.ObjectID) string {
	const most = 10
	names := make([]string, 0, most)
	for i, id := range ids {
		if i == most {
			names = append(names, fmt.Sprintf("and %d more", len(ids)-most))
			break
		}
		names = append(names, id.Describe())
	}
	return strings.Join(names, ", ")
}
