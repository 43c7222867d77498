package controllers

import (
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
)

// deletionPredicate passes updates that set a deletionTimestamp or change finalizers, which
// GenerationChangedPredicate would miss for a cluster-scoped object without a spec change.
type deletionPredicate struct{ predicate.Funcs }

func (deletionPredicate) Update(e event.UpdateEvent) bool {
	if e.ObjectOld == nil || e.ObjectNew == nil {
		return false
	}
	return !e.ObjectNew.GetDeletionTimestamp().Equal(e.ObjectOld.GetDeletionTimestamp()) ||
		len(e.ObjectNew.GetFinalizers()) != len(e.ObjectOld.GetFinalizers())
}

// statusStateLost passes updates that emptied what status reports of the live state (the revisions, where the tags
// point, the inventory, the version): someone wiped or edited status, and a reconcile rebuilds it at once. The
// operator's own status writes never empty these fields, so they cause no reconcile loop.
type statusStateLost struct{ predicate.Funcs }

func (statusStateLost) Update(e event.UpdateEvent) bool {
	oldMesh, ok1 := e.ObjectOld.(*meshv1.ServiceMesh)
	newMesh, ok2 := e.ObjectNew.(*meshv1.ServiceMesh)
	if !ok1 || !ok2 {
		return false
	}
	was, is := oldMesh.Status, newMesh.Status
	emptied := func(had, has bool) bool { return had && !has }
	return emptied(len(was.Revisions) > 0, len(is.Revisions) > 0) ||
		emptied(was.ActiveRevision != "", is.ActiveRevision != "") ||
		emptied(was.Inventory != nil && len(was.Inventory.Entries) > 0, is.Inventory != nil && len(is.Inventory.Entries) > 0) ||
		emptied(was.Version != "", is.Version != "")
}
