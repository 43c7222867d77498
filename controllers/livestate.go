package controllers

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/apply"
	"github.com/meshwright/meshwright/internal/istio"
	"github.com/meshwright/meshwright/internal/render"
	"github.com/meshwright/meshwright/internal/status"
)

// labelTag is the label Istio's charts put on a revision tag's injection webhook.
const labelTag = "istio.io/tag"

// liveState is what exists of a mesh, read from the objects labelled as its own. It is the source of truth that status
// only reports: a status someone wiped or edited is rebuilt from it, and the decisions that must never move
// backwards (where the revision tags point, the Istio minor the mesh runs) are taken from it.
type liveState struct {
	// revisions maps each revision that has an istiod Deployment ("default" for InPlace) to the Istio version that
	// Deployment runs ("" when nothing tells).
	revisions map[string]string
	// tagTarget is the revision the default revision tag's webhook points at; "" without one (InPlace, or nothing
	// installed yet).
	tagTarget string
	// inventory lists the inventory entries of every live object labelled as the mesh's; byRevision those of each
	// revision (objects with render.LabelRevision).
	inventory  []string
	byRevision map[string][]string
}

// running returns the exact Istio version serving the mesh: that of the revision the default tag points at (the only
// revision of InPlace), else the newest live one; "" when no live istiod tells.
func (l liveState) running() string {
	if v := l.revisions[cmp.Or(l.tagTarget, "default")]; v != "" {
		return v
	}
	newest := ""
	for _, v := range l.revisions {
		if istio.CompareVersions(v, newest) > 0 {
			newest = v
		}
	}
	return newest
}

// observe reads what is live for the mesh and rebuilds from it what status lost.
func (r *ServiceMeshReconciler) observe(ctx context.Context, s *scope) (ctrl.Result, error) {
	live, err := r.readLive(ctx, s.mesh)
	if err != nil {
		s.outcome = status.Outcome{Reason: meshv1.ReasonReconciling, Message: "Reading the mesh's objects: " + err.Error(), Reconciling: true}
		return ctrl.Result{}, err
	}
	s.live = live
	r.rebuildStatus(ctx, s)
	return ctrl.Result{}, nil
}

// readLive reads the istiod Deployments (see istiodDeployments) and, for a RevisionBased mesh, the default tag's
// webhook from the API server, not the cache: a revision just retired, or a tag just moved, must not come back from a
// cache that has not seen the change yet. The inventory comes from the label-filtered cache: an entry it still lists for an object just deleted is
// dropped by the next prune, which finds the object gone.
func (r *ServiceMeshReconciler) readLive(ctx context.Context, mesh *meshv1.ServiceMesh) (liveState, error) {
	live := liveState{revisions: map[string]string{}, byRevision: map[string][]string{}}
	deps, err := r.istiodDeployments(ctx, mesh)
	if err != nil {
		return live, fmt.Errorf("listing istiod Deployments: %w", err)
	}
	for i := range deps {
		if rev := deps[i].Labels[render.LabelRevision]; rev != "" {
			live.revisions[rev] = istiodVersion(&deps[i], mesh.Name)
		}
	}
	if revisionBased(mesh) {
		hooks := &metav1.PartialObjectMetadataList{}
		hooks.SetGroupVersionKind(admissionv1.SchemeGroupVersion.WithKind("MutatingWebhookConfigurationList"))
		if err := r.APIReader.List(ctx, hooks, client.MatchingLabels{render.LabelOwner: mesh.Name, labelTag: defaultTag}); err != nil {
			return live, fmt.Errorf("listing the default revision tag's webhook: %w", err)
		}
		for _, h := range hooks.Items {
			live.tagTarget = cmp.Or(h.Labels[render.LabelRevision], h.Labels[labelRev])
		}
	}
	live.inventory, live.byRevision, err = r.liveObjects(ctx, mesh.Name)
	return live, err
}

// istiodDeployments lists the mesh's istiod Deployments: from the API server for a RevisionBased mesh, whose retired
// revisions and moved tags must not come back from a cache that has not seen the change yet; from the cache for a mesh
// in place. In place there is one istiod, never retired while the mesh lives, and any state of it the cache is behind
// on comes with an event that reconciles the mesh again: one Meshwright created a moment ago was rendered from the same
// spec and version, which the reconcile renders the same again; one deleted or edited by someone else is repaired when
// the event arrives, as apply, which reads the cache too, would do anyway. A consistent list from the API server
// waits for etcd's next progress notification, up to 100 ms, whenever the last writes were to other kinds (the mesh's
// own status, just written): in every reconcile in place, including the one that sees istiod Available.
func (r *ServiceMeshReconciler) istiodDeployments(ctx context.Context, mesh *meshv1.ServiceMesh) ([]appsv1.Deployment, error) {
	selector := []client.ListOption{client.InNamespace(mesh.Spec.Namespace),
		client.MatchingLabels{render.LabelOwner: mesh.Name, render.LabelComponent: render.ComponentIstiod}}
	if !revisionBased(mesh) {
		cached := &unstructured.UnstructuredList{}
		cached.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("DeploymentList"))
		if err := r.List(ctx, cached, selector...); err != nil {
			return nil, err
		}
		deps := make([]appsv1.Deployment, len(cached.Items))
		for i := range cached.Items {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(cached.Items[i].Object, &deps[i]); err != nil {
				return nil, err
			}
		}
		return deps, nil
	}
	deps := &appsv1.DeploymentList{}
	if err := r.APIReader.List(ctx, deps, selector...); err != nil {
		return nil, err
	}
	return deps.Items, nil
}

// liveObjects lists, from the cache (syncedOrLive), the inventory entries of the objects of a rendered kind labelled as the mesh's.
func (r *ServiceMeshReconciler) liveObjects(ctx context.Context, mesh string) (all []string, byRevision map[string][]string, err error) {
	byRevision = map[string][]string{}
	for _, gvk := range r.listableKinds() {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := r.syncedOrLive().List(ctx, list, client.MatchingLabels{render.LabelOwner: mesh}, client.UnsafeDisableDeepCopy); err != nil {
			return nil, nil, fmt.Errorf("listing %s: %w", gvk.Kind, err)
		}
		for i := range list.Items {
			// The item is the cache's own object (no deep copy): read it, never write to it.
			item := &list.Items[i]
			id := apply.ObjectID{Namespace: item.GetNamespace(), Name: item.GetName(), GroupKind: gvk.GroupKind()}.String()
			all = append(all, id)
			if rev := item.GetLabels()[render.LabelRevision]; rev != "" {
				byRevision[rev] = append(byRevision[rev], id)
			}
		}
	}
	slices.Sort(all)
	return all, byRevision, nil
}

// listableKinds are the rendered kinds the cache holds (every watched kind, and the CRD-backed kinds once watched),
// except Namespaces and CRDs: they outlive a deleted mesh, and one left by an earlier mesh of the same name must never
// be pruned by this one, since deleting it deletes everything it holds. The render lists those this mesh applies.
func (r *ServiceMeshReconciler) listableKinds() []schema.GroupVersionKind {
	kinds := slices.DeleteFunc(slices.Clone(WatchedKinds), func(gvk schema.GroupVersionKind) bool {
		return gvk.Kind == "Namespace" || gvk.Kind == "CustomResourceDefinition"
	})
	r.watchMu.Lock()
	defer r.watchMu.Unlock()
	for _, gvk := range CRDBackedKinds {
		if r.watched[gvk] {
			kinds = append(kinds, gvk)
		}
	}
	return kinds
}

// rebuildStatus restores what status lost from what is live, at once: inventory entries (or nothing would ever prune
// those objects), revisions (their readiness timeout and grace period start again: never cut short) and where the
// revision tags point.
func (r *ServiceMeshReconciler) rebuildStatus(ctx context.Context, s *scope) {
	st := &s.mesh.Status
	var inventory []string
	if st.Inventory != nil {
		inventory = st.Inventory.Entries
	}
	missing := apply.Stale(s.live.inventory, inventory)
	if len(missing) > 0 {
		st.Inventory = &meshv1.Inventory{Entries: union(inventory, s.live.inventory)}
	}
	var restored []string
	if revisionBased(s.mesh) {
		names := slices.SortedFunc(maps.Keys(s.live.revisions), func(a, b string) int {
			return cmp.Or(istio.CompareVersions(s.live.revisions[a], s.live.revisions[b]), cmp.Compare(a, b))
		})
		for _, name := range names {
			if s.revisionStatus(name) != nil {
				continue
			}
			st.Revisions = append(st.Revisions, meshv1.RevisionStatus{Name: name, Version: s.live.revisions[name],
				CreatedAt: &metav1.Time{Time: r.Now().Truncate(time.Second)}})
			restored = append(restored, name)
		}
	}
	movedActive := s.live.tagTarget != "" && st.ActiveRevision != s.live.tagTarget
	if movedActive {
		st.ActiveRevision = s.live.tagTarget
	}
	if len(missing) > 0 {
		log.FromContext(ctx).V(1).Info("Restoring inventory entries from the live objects", "entries", missing)
	}
	// An inventory entry or two can be missing for a moment (an object deleted a moment ago, still in the cache):
	// only a real loss is announced.
	if len(restored) > 0 || movedActive || (len(inventory) == 0 && len(missing) > 0) {
		r.Recorder.Eventf(s.mesh, nil, "Warning", "StatusRebuilt", "Observe",
			"Status disagreed with the live objects and was rebuilt from them: %d inventory entries, revisions restored %v, active revision %s",
			len(missing), restored, cmp.Or(st.ActiveRevision, "unchanged"))
	}
}

// versionInImage matches the exact version an image tag starts with ("1.31.0", "1.31.0-distroless").
var versionInImage = regexp.MustCompile(`^([0-9]+\.[0-9]+\.[0-9]+)`)

// istiodVersion is the Istio version an istiod Deployment runs: its discovery container's image tag (the catalog
// tags images with the exact version), else the version a revision's name carries ("<mesh>-1-31-0").
func istiodVersion(d *appsv1.Deployment, mesh string) string {
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name != "discovery" {
			continue
		}
		ref, _, _ := strings.Cut(c.Image, "@")
		tag := ref[strings.LastIndex(ref, "/")+1:]
		if _, t, ok := strings.Cut(tag, ":"); ok {
			if m := versionInImage.FindStringSubmatch(t); m != nil {
				return m[1]
			}
		}
	}
	if suffix, ok := strings.CutPrefix(d.Labels[render.LabelRevision], mesh+"-"); ok {
		if v := strings.ReplaceAll(suffix, "-", "."); versionInImage.FindString(v) == v {
			return v
		}
	}
	return ""
}
