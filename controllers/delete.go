package controllers

import (
	"context"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/apply"
)

// reconcileDelete removes everything the mesh's inventory lists, webhooks first, then releases the finalizer. Kept:
// the Namespace (it may hold objects users put there, such as their own CA secret) and, unless
// spec.crdDeletionPolicy is Delete, Istio's CRDs (deleting a CRD deletes every user object of that kind).
func (r *ServiceMeshReconciler) reconcileDelete(ctx context.Context, mesh *meshv1.ServiceMesh) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(mesh, meshv1.Finalizer) {
		return ctrl.Result{}, nil
	}
	var entries []string
	if mesh.Status.Inventory != nil {
		entries = mesh.Status.Inventory.Entries
	}
	// Status may have lost entries (someone wiped it): the live labelled objects are deleted too.
	live, _, err := r.liveObjects(ctx, mesh.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	entries = union(entries, live)
	var doomed []string
	for _, e := range entries {
		if keepOnDelete(e, mesh.Spec.CRDDeletionPolicy) {
			continue
		}
		doomed = append(doomed, e)
	}
	remaining, err := r.applier(mesh).Delete(ctx, orderForDeletion(doomed, mesh.Spec.Gateways))
	if len(remaining) > 0 {
		if err == nil {
			err = fmt.Errorf("%d objects not deleted yet", len(remaining))
		}
		// The inventory keeps what failed, so nothing is forgotten if the operator restarts.
		patch := client.MergeFrom(mesh.DeepCopy())
		kept := slices.DeleteFunc(slices.Clone(entries), func(e string) bool {
			return slices.Contains(doomed, e) && !slices.Contains(remaining, e)
		})
		mesh.Status.Inventory = &meshv1.Inventory{Entries: kept}
		if perr := r.Status().Patch(ctx, mesh, patch); perr != nil {
			return ctrl.Result{}, fmt.Errorf("recording the inventory left to delete: %w (deleting: %v)", perr, err)
		}
		return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	// Its CA certificates are gone with everything else: their expiry is no longer exported.
	caExpiry.forget(mesh.Name)
	if err := patchFinalizer(ctx, r.Client, mesh, controllerutil.RemoveFinalizer); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("removing finalizer: %w", err)
	}
	return ctrl.Result{}, nil
}

func keepOnDelete(entry string, policy meshv1.CRDDeletionPolicy) bool {
	id, err := apply.ParseID(entry)
	if err != nil {
		return true
	}
	switch id.GroupKind.Kind {
	case "Namespace":
		return true
	case "CustomResourceDefinition":
		return policy != meshv1.CRDDeletionPolicyDelete
	}
	return false
}
