package controllers

import (
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
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
