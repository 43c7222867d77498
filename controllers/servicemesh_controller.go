// Package controllers holds the ServiceMesh reconciler. It is thin: it reads the ServiceMesh, guards deletion with a
// finalizer, delegates the work to internal packages, and writes status. It owns no rendering or apply logic.
package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/status"
)

// ServiceMeshReconciler reconciles ServiceMesh objects.
type ServiceMeshReconciler struct {
	client.Client
	Recorder events.EventRecorder
}

// +kubebuilder:rbac:groups=mesh.meshwright.dev,resources=servicemeshes,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=mesh.meshwright.dev,resources=servicemeshes/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=mesh.meshwright.dev,resources=servicemeshes/finalizers,verbs=update
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile drives one ServiceMesh towards its spec.
func (r *ServiceMeshReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	mesh := &meshv1.ServiceMesh{}
	if err := r.Get(ctx, req.NamespacedName, mesh); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !mesh.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.reconcileDelete(ctx, mesh)
	}
	if !controllerutil.ContainsFinalizer(mesh, meshv1.Finalizer) {
		patch := client.MergeFrom(mesh.DeepCopy())
		controllerutil.AddFinalizer(mesh, meshv1.Finalizer)
		if err := r.Patch(ctx, mesh, patch); err != nil {
			return ctrl.Result{}, fmt.Errorf("adding finalizer: %w", err)
		}
	}

	before := mesh.DeepCopy()
	status.Apply(mesh, status.Outcome{
		Reason:  meshv1.ReasonNotImplemented,
		Message: "Installing the control plane is not implemented yet",
	})
	return ctrl.Result{}, r.patchStatus(ctx, before, mesh)
}

func (r *ServiceMeshReconciler) reconcileDelete(ctx context.Context, mesh *meshv1.ServiceMesh) error {
	if !controllerutil.ContainsFinalizer(mesh, meshv1.Finalizer) {
		return nil
	}
	patch := client.MergeFrom(mesh.DeepCopy())
	controllerutil.RemoveFinalizer(mesh, meshv1.Finalizer)
	if err := r.Patch(ctx, mesh, patch); err != nil {
		return fmt.Errorf("removing finalizer: %w", err)
	}
	return nil
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

// SetupWithManager registers the controller. Status-only updates of the ServiceMesh do not trigger a reconcile.
func (r *ServiceMeshReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&meshv1.ServiceMesh{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{},
			predicate.LabelChangedPredicate{}, deletionPredicate{}))).
		Named("servicemesh").
		Complete(r)
}
