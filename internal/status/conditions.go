// Package status owns the ServiceMesh status contract (kstatus): Ready is always present after the first reconcile,
// Reconciling and Stalled are present only while true, and observedGeneration marks a finished reconcile. It also
// decides which failures need the user (Stalled) and which are retried (Reconciling), and guarantees that every
// condition it writes has a reason and a message the API server accepts. It only computes conditions in memory;
// writing status is the controller's job.
package status

import (
	"errors"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
)

// maxMessageLength is metav1.Condition's limit on messages; a longer one would make the API server refuse the whole
// status write.
const maxMessageLength = 32768

// Outcome is what one reconcile concluded, expressed in the terms of the status contract.
type Outcome struct {
	// Ready is the value of the Ready condition.
	Ready bool
	// Reason and Message explain Ready to users.
	Reason  string
	Message string
	// Reconciling is true while the operator is still converging (applying, rolling out, retrying a transient error).
	Reconciling bool
	// Stalled is true when the operator cannot make progress without a change from the user.
	Stalled bool
}

// Failed is the outcome of a failure while doing what reason names: Stalled when retrying cannot help until someone
// changes something (NeedsUserAction), Reconciling otherwise.
func Failed(reason string, err error) Outcome {
	stalled := NeedsUserAction(err)
	return Outcome{Reason: reason, Message: err.Error(), Stalled: stalled, Reconciling: !stalled}
}

// NeedsUserAction reports whether the API server refused a request for a reason that repeats until someone changes
// the request, a policy or the operator's permissions: admission (ValidatingAdmissionPolicy, webhooks), RBAC, schema
// validation. Everything else (timeouts, throttling, conflicts, unavailable servers, a namespace being deleted) is
// transient.
func NeedsUserAction(err error) bool {
	var apiStatus apierrors.APIStatus
	if errors.As(err, &apiStatus) && apiStatus.Status().Details != nil {
		for _, c := range apiStatus.Status().Details.Causes {
			if c.Type == corev1.NamespaceTerminatingCause {
				return false
			}
		}
	}
	switch apierrors.ReasonForError(err) {
	case metav1.StatusReasonForbidden, metav1.StatusReasonUnauthorized, metav1.StatusReasonInvalid,
		metav1.StatusReasonBadRequest, metav1.StatusReasonMethodNotAllowed, metav1.StatusReasonNotAcceptable,
		metav1.StatusReasonUnsupportedMediaType, metav1.StatusReasonRequestEntityTooLarge:
		return true
	}
	return false
}

// Apply writes the outcome of a reconcile that returned err into the mesh status. An error always shows: when the
// outcome does not already report a failure (it is empty, or says Ready), the error replaces it with reason
// ReconcileError, so no failure is ever hidden behind Ready=True or written with an empty reason. Apply is
// idempotent: applying the same outcome twice leaves the status (timestamps included) unchanged, so a steady state
// causes no status write.
func Apply(mesh *meshv1.ServiceMesh, o Outcome, err error) {
	switch {
	case err != nil && !o.Stalled && !o.Reconciling:
		o = Failed(meshv1.ReasonReconcileError, err)
	case o.Reason == "":
		o = Outcome{Reason: meshv1.ReasonReconciling, Message: "Reconciliation in progress", Reconciling: true}
	}
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

// set writes a condition that the API server accepts whatever the caller passed: a reason is required and a message
// is bounded, and a refused status write would lose the inventory along with the conditions.
func set(st *meshv1.ServiceMeshStatus, t string, s metav1.ConditionStatus, reason, msg string, gen int64) {
	if reason == "" {
		reason = meshv1.ReasonReconcileError
	}
	if msg == "" {
		msg = reason
	}
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: t, Status: s, Reason: reason, Message: truncate(msg, maxMessageLength), ObservedGeneration: gen,
	})
}

// truncate cuts s to at most limit bytes without splitting a UTF-8 sequence.
func truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	const ellipsis = "..."
	cut := limit - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
