package status

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
)

var deployments = schema.GroupResource{Group: "apps", Resource: "deployments"}

func TestApplyNeverWritesAConditionTheAPIServerRefuses(t *testing.T) {
	refused := fmt.Errorf("applying istiod: %w", apierrors.NewForbidden(deployments, "istiod", errors.New("denied by policy")))
	cases := []struct {
		name                         string
		outcome                      Outcome
		err                          error
		wantReady                    metav1.ConditionStatus
		wantReason                   string
		wantStalled, wantReconciling bool
	}{
		{name: "an empty outcome with a transient error reports ReconcileError and retries",
			err:       errors.New("listing pods: connection refused"),
			wantReady: metav1.ConditionFalse, wantReason: meshv1.ReasonReconcileError, wantReconciling: true},
		{name: "an empty outcome with a refusal reports ReconcileError and stalls",
			err:       refused,
			wantReady: metav1.ConditionFalse, wantReason: meshv1.ReasonReconcileError, wantStalled: true},
		{name: "an error after the control plane was found ready turns Ready to False",
			outcome: Outcome{Ready: true, Reason: meshv1.ReasonReady, Message: "ready"}, err: errors.New("restarting app: timeout"),
			wantReady: metav1.ConditionFalse, wantReason: meshv1.ReasonReconcileError, wantReconciling: true},
		{name: "an outcome that already reports the failure is kept",
			outcome: Failed(meshv1.ReasonApplyFailed, refused), err: refused,
			wantReady: metav1.ConditionFalse, wantReason: meshv1.ReasonApplyFailed, wantStalled: true},
		{name: "an empty outcome without an error still has a reason",
			wantReady: metav1.ConditionFalse, wantReason: meshv1.ReasonReconciling, wantReconciling: true},
		{name: "a message longer than a condition allows is shortened",
			outcome:   Outcome{Reason: meshv1.ReasonApplyFailed, Message: strings.Repeat("é", maxMessageLength), Reconciling: true},
			wantReady: metav1.ConditionFalse, wantReason: meshv1.ReasonApplyFailed, wantReconciling: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mesh := &meshv1.ServiceMesh{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
			Apply(mesh, tc.outcome, tc.err)
			// The same validation the API server applies to metav1.Condition (the CRD's schema has the same rules).
			if errs := metav1validation.ValidateConditions(mesh.Status.Conditions, field.NewPath("status", "conditions")); len(errs) > 0 {
				t.Fatalf("the API server would refuse this status: %v", errs.ToAggregate())
			}
			ready := meta.FindStatusCondition(mesh.Status.Conditions, meshv1.ConditionReady)
			if ready.Status != tc.wantReady || ready.Reason != tc.wantReason || ready.Message == "" {
				t.Errorf("Ready %s/%s %q, want %s/%s with a message", ready.Status, ready.Reason, ready.Message, tc.wantReady, tc.wantReason)
			}
			if tc.err != nil && !strings.Contains(ready.Message, tc.err.Error()) {
				t.Errorf("Ready message %q does not carry the error %q", ready.Message, tc.err)
			}
			if got := meta.IsStatusConditionTrue(mesh.Status.Conditions, meshv1.ConditionStalled); got != tc.wantStalled {
				t.Errorf("Stalled %t, want %t", got, tc.wantStalled)
			}
			if got := meta.IsStatusConditionTrue(mesh.Status.Conditions, meshv1.ConditionReconciling); got != tc.wantReconciling {
				t.Errorf("Reconciling %t, want %t", got, tc.wantReconciling)
			}
			if mesh.Status.ObservedGeneration != 3 {
				t.Errorf("observedGeneration %d, want 3", mesh.Status.ObservedGeneration)
			}
		})
	}
}

func TestSetComponentFillsAMissingReasonAndMessage(t *testing.T) {
	mesh := &meshv1.ServiceMesh{}
	SetComponent(mesh, meshv1.ConditionControlPlaneReady, false, "", "")
	if errs := metav1validation.ValidateConditions(mesh.Status.Conditions, field.NewPath("status", "conditions")); len(errs) > 0 {
		t.Fatalf("the API server would refuse this status: %v", errs.ToAggregate())
	}
}

func TestNeedsUserAction(t *testing.T) {
	terminating := apierrors.NewForbidden(deployments, "istiod", errors.New("namespace is being terminated"))
	terminating.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: "NamespaceTerminating"}}
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"an admission or RBAC refusal needs the user", apierrors.NewForbidden(deployments, "istiod", errors.New("no")), true},
		{"an object the schema rejects needs the user", apierrors.NewInvalid(schema.GroupKind{Kind: "ConfigMap"}, "istio", nil), true},
		{"a wrapped refusal needs the user", fmt.Errorf("applying: %w", apierrors.NewBadRequest("bad")), true},
		{"a namespace being deleted passes by itself", terminating, false},
		{"a conflict passes by itself", apierrors.NewConflict(deployments, "istiod", errors.New("changed")), false},
		{"throttling passes by itself", apierrors.NewTooManyRequests("slow down", 1), false},
		{"a timeout passes by itself", apierrors.NewTimeoutError("slow", 1), false},
		{"a kind not served yet passes by itself", apierrors.NewNotFound(deployments, "istiod"), false},
		{"an error that is not the API server's passes by itself", errors.New("connection refused"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := NeedsUserAction(tc.err); got != tc.want {
				t.Errorf("NeedsUserAction(%v) = %t, want %t", tc.err, got, tc.want)
			}
		})
	}
}
