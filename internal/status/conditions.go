// Package status owns the ServiceMesh status contract (kstatus): Ready is always present after the first reconcile,
// Reconciling and Stalled are present only while true, and observedGeneration marks a finished reconcile. It only
// computes conditions in memory; writing status is the controller's job.
package status

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
)

// Outcome is what one reconcile concluded, expressed in the terms of the status contract.
type Outcome struct {
	// Ready is the value of the Ready condition.
	Ready bool
	// Reason and Message explain Ready to users.
	Reason  string
	Message string
	// Reconciling is true while the operator is still converging (applying, rolling out).
	Reconciling bool
	// Stalled is true when the operator cannot make progress without a change from the user.
	Stalled bool
}

// Apply writes the outcome into the mesh status for the given generation. It is idempotent: applying the same
// outcome twice leaves the status (timestamps included) unchanged, so a steady state causes no status write.
func Apply(mesh *meshv1.ServiceMesh, o Outcome) {
	gen := mesh.Generation
	st := &mesh.Status
	readyStatus := metav1.ConditionFalse
	if o.Ready {
		readyStatus = metav1.ConditionTrue
	}
	set(st, meshv1.ConditionReady, readyStatus, o.Reason, o.Message, gen)
	if o.Reconciling {
		set(st, meshv1.ConditionReconciling, metav1.ConditionTrue, o.Reason, o.Message, gen)
	} else {
		meta.RemoveStatusCondition(&st.Conditions, meshv1.ConditionReconciling)
	}
	if o.Stalled {
		set(st, meshv1.ConditionStalled, metav1.ConditionTrue, o.Reason, o.Message, gen)
	} else {
		meta.RemoveStatusCondition(&st.Conditions, meshv1.ConditionStalled)
	}
	// A stalled generation is still "observed": the operator looked at it and concluded it cannot proceed, which
	// kstatus reports as Failed rather than InProgress forever.
	st.ObservedGeneration = gen
}

// Pause records that the mesh is paused (meshv1.AnnotationPaused): Meshwright writes none of its objects, so there is
// nothing to reconcile and nothing has failed.
//
//   - Paused=True says so, with message.
//   - Ready keeps answering the one question that still has a live answer, whether the serving istiod (servingReady,
//     servingMessage) is available, with reason Paused, so it never claims more than is known: drift is not
//     repaired while paused.
//   - Reconciling and Stalled are removed: nothing is in progress, and nothing is broken.
//   - observedGeneration is left as it is: a spec changed while paused has not been acted on, so kstatus reports
//     InProgress (not Current) until the pause is lifted and the change applied. A paused mesh whose spec did not change
//     is Current exactly when its serving istiod is available.
func Pause(mesh *meshv1.ServiceMesh, servingReady bool, servingMessage, message string) {
	st := &mesh.Status
	readyStatus := metav1.ConditionFalse
	if servingReady {
		readyStatus = metav1.ConditionTrue
	}
	readyGen := int64(0)
	if c := meta.FindStatusCondition(st.Conditions, meshv1.ConditionReady); c != nil {
		readyGen = c.ObservedGeneration
	}
	set(st, meshv1.ConditionReady, readyStatus, meshv1.ReasonPaused, "Paused: "+servingMessage, readyGen)
	set(st, meshv1.ConditionPaused, metav1.ConditionTrue, meshv1.ReasonPaused, message, mesh.Generation)
	meta.RemoveStatusCondition(&st.Conditions, meshv1.ConditionReconciling)
	meta.RemoveStatusCondition(&st.Conditions, meshv1.ConditionStalled)
}

// SetComponent records a component condition (ControlPlaneReady, ...), which Ready summarises.
func SetComponent(mesh *meshv1.ServiceMesh, conditionType string, ok bool, reason, message string) {
	s := metav1.ConditionFalse
	if ok {
		s = metav1.ConditionTrue
	}
	set(&mesh.Status, conditionType, s, reason, message, mesh.Generation)
}

func set(st *meshv1.ServiceMeshStatus, t string, s metav1.ConditionStatus, reason, msg string, gen int64) {
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: gen,
	})
}
