package controllers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	apiextensionshelpers "k8s.io/apiextensions-apiserver/pkg/apihelpers"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/apply"
	"github.com/meshwright/meshwright/internal/istio"
	"github.com/meshwright/meshwright/internal/render"
	"github.com/meshwright/meshwright/internal/status"
)

// rolloutRecheck bounds how long a rollout can go unassessed if a watch event is missed.
const rolloutRecheck = 30 * time.Second

// checkConflicts stalls a ServiceMesh unless it is the one that manages the Istio control plane: two would render the
// same cluster-scoped objects (Istio's CRDs, the default validator) and fight over them. Unless the mesh holds the
// control plane alone (holdsAlone), the ServiceMeshes are read from the API server, not the cache, so a mesh created
// a moment ago is seen. The stall is terminal; the watch on
// ServiceMesh deletions wakes the others when the holder is gone.
func (r *ServiceMeshReconciler) checkConflicts(ctx context.Context, s *scope) (ctrl.Result, error) {
	if r.holdsAlone(ctx, s.mesh) {
		return ctrl.Result{}, nil
	}
	meshes := &meshv1.ServiceMeshList{}
	if err := r.APIReader.List(ctx, meshes); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing ServiceMeshes: %w", err)
	}
	holder := controlPlaneHolder(meshes.Items)
	switch {
	case holder == nil || holder.UID == s.mesh.UID:
		return ctrl.Result{}, nil
	case !holder.DeletionTimestamp.IsZero():
		return ctrl.Result{}, s.stalled(meshv1.ReasonConflict, fmt.Sprintf(
			"ServiceMesh %q, which manages the Istio control plane of this cluster, is being deleted; this ServiceMesh takes over once it is gone", holder.Name))
	default:
		return ctrl.Result{}, s.stalled(meshv1.ReasonConflict, fmt.Sprintf(
			"ServiceMesh %q already manages the Istio control plane of this cluster; only one ServiceMesh is supported", holder.Name))
	}
}

// holdsAlone reports whether mesh has applied objects (it has an inventory) and the cache holds no other ServiceMesh:
// then mesh holds the control plane, and the check costs no API request, as in every reconcile of a cluster's one
// mesh after its first apply. A mesh the cache has not seen yet (created a moment ago) has not been reconciled, so it
// has applied nothing and cannot take the control plane from one that has: meshes reach the controller through this
// same cache, which syncs before the first reconcile. A mesh that has applied nothing yet, or sees another, asks the
// API server, whose list is not behind a mesh created a moment ago or another mesh's inventory.
func (r *ServiceMeshReconciler) holdsAlone(ctx context.Context, mesh *meshv1.ServiceMesh) bool {
	if !hasApplied(mesh) {
		return false
	}
	cached := &meshv1.ServiceMeshList{}
	if err := r.List(ctx, cached); err != nil {
		return false
	}
	return len(cached.Items) == 1 && cached.Items[0].UID == mesh.UID
}

// hasApplied reports whether a mesh has applied objects: its status holds an inventory.
func hasApplied(m *meshv1.ServiceMesh) bool {
	return m.Status.Inventory != nil && len(m.Status.Inventory.Entries) > 0
}

// controlPlaneHolder picks the one ServiceMesh allowed to manage the control plane, the same whichever mesh asks: one
// that already applied objects (it has an inventory) keeps them, then the oldest, then the first by name
// (creationTimestamp has whole seconds). Without the first rule, a mesh reconciled before a same-second mesh with a
// smaller name existed would proceed, and then that one too. A mesh being deleted holds until it is gone, so its
// cleanup and the next mesh's install never overlap.
func controlPlaneHolder(meshes []meshv1.ServiceMesh) *meshv1.ServiceMesh {
	var holder *meshv1.ServiceMesh
	for i := range meshes {
		m := &meshes[i]
		switch {
		case holder == nil:
			holder = m
		case hasApplied(m) != hasApplied(holder):
			if hasApplied(m) {
				holder = m
			}
		case !m.CreationTimestamp.Equal(&holder.CreationTimestamp):
			if m.CreationTimestamp.Before(&holder.CreationTimestamp) {
				holder = m
			}
		case m.Name < holder.Name:
			holder = m
		}
	}
	return holder
}

// resolveVersion turns spec.version into a catalog version. An empty spec.version or "latest" keeps the minor the
// live istiod runs, so upgrading Meshwright never upgrades a mesh's minor. An unsupported version stalls the mesh and
// touches nothing: the last good control plane keeps running. A running version past its end of life only warns.
func (r *ServiceMeshReconciler) resolveVersion(_ context.Context, s *scope) (ctrl.Result, error) {
	running := s.live.running()
	if running == "" && len(s.live.revisions) > 0 {
		running = s.mesh.Status.Version // an istiod whose image says nothing (edited?): the last version reported
	}
	res, err := r.Catalog().ResolveRunning(s.mesh.Spec.Version, running, r.Now())
	var unsupported *istio.UnsupportedVersionError
	if errors.As(err, &unsupported) {
		return ctrl.Result{}, s.stalled(meshv1.ReasonUnsupportedVersion, err.Error())
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	s.version = res.Version
	if s.mesh.Status.Version == "" && running != "" {
		// Rebuilding a wiped status: the version the mesh was moving to, if a revision of it is live, else the running one.
		s.mesh.Status.Version = running
		if slices.Contains(slices.Collect(maps.Values(s.live.revisions)), s.version.Version) {
			s.mesh.Status.Version = s.version.Version
		}
	}
	r.reportSupport(s, res)
	return ctrl.Result{}, nil
}

// reportSupport warns, with the VersionSupported condition and an event, while the mesh runs a version past its end
// of life. The condition is present only then.
func (r *ServiceMeshReconciler) reportSupport(s *scope, res istio.Resolution) {
	if !res.PastEndOfLife {
		meta.RemoveStatusCondition(&s.mesh.Status.Conditions, meshv1.ConditionVersionSupported)
		return
	}
	msg := fmt.Sprintf("Istio %s reached its end of life on %s and gets no more fixes; the mesh keeps running it. "+
		"Set spec.version to a supported version to upgrade.", res.Version.Version, res.EndOfLife)
	if c := meta.FindStatusCondition(s.mesh.Status.Conditions, meshv1.ConditionVersionSupported); c == nil || c.Status != metav1.ConditionFalse {
		r.Recorder.Eventf(s.mesh, nil, "Warning", meshv1.ReasonEndOfLife, "Resolve", msg)
	}
	status.SetComponent(s.mesh, meshv1.ConditionVersionSupported, false, meshv1.ReasonEndOfLife, msg)
}

// render produces the desired objects, from the render cache when the inputs did not change. A render error is the user's input (a chart rejected spec.values, say): the mesh stalls.
func (r *ServiceMeshReconciler) render(ctx context.Context, s *scope) (ctrl.Result, error) {
	caRoot, err := r.caRootFingerprint(ctx, s.mesh)
	if err != nil {
		s.outcome = status.Outcome{Reason: meshv1.ReasonCertificatesIssuing, Message: err.Error(), Reconciling: true}
		return ctrl.Result{}, err
	}
	s.caRoot = caRoot
	cfg := r.renderConfig(s.mesh, s.version, s.revisions, s.tagTarget, caRoot)
	if err := checkAmbientValues(s); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.checkGatewayNamespaces(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	s.createOnly = s.createOnlyObjects(cfg)
	objs, err := r.Renders.Render(cfg)
	var unknown *render.UnknownValueError
	switch {
	case errors.As(err, &unknown):
		return ctrl.Result{}, s.stalled(meshv1.ReasonInvalidSpec, unknown.Error()+"; the running mesh is left as it is")
	case err != nil:
		return ctrl.Result{}, s.stalled(meshv1.ReasonInvalidSpec,
			fmt.Sprintf("Istio %s cannot be rendered from this spec (check spec.values, spec.meshConfig, spec.profile and the values of gateways and CNI): %v", s.version.Version, err))
	}
	s.objects = objs
	return ctrl.Result{}, r.skipForeignGatewayAPI(ctx, s)
}

// renderConfig is what a mesh renders from, given what the earlier phases resolved. The warm-up at start-up uses it
// too, so that its render is the one the first reconcile of a default mesh asks for.
func (r *ServiceMeshReconciler) renderConfig(mesh *meshv1.ServiceMesh, version istio.Version, revisions []render.Revision, tagTarget, caRoot string) render.Config {
	return render.Config{
		MeshName:        mesh.Name,
		Namespace:       mesh.Spec.Namespace,
		Hub:             r.Catalog().Hub,
		Version:         version,
		Revisions:       revisions,
		DefaultRevision: tagTarget,
		KubeVersion:     r.KubeVersion,
		Spec:            mesh.Spec,
		CARoot:          caRoot,
		Owner: &metav1.OwnerReference{
			APIVersion: meshv1.GroupVersion.String(), Kind: "ServiceMesh", Name: mesh.Name, UID: mesh.UID,
			Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
		},
	}
}

// apply writes what changed and prunes what the render no longer contains. The inventory in status always covers
// every object that may exist: the union of old and new while applying, then the new one plus what failed to prune.
func (r *ServiceMeshReconciler) apply(ctx context.Context, s *scope) (ctrl.Result, error) {
	var previous []string
	if s.mesh.Status.Inventory != nil {
		previous = s.mesh.Status.Inventory.Entries
	}
	// The rows that wait for the control plane are applied by assess, once what they depend on is ready.
	if res, err := r.applyObjects(ctx, s, slices.DeleteFunc(slices.Clone(s.objects), func(o *unstructured.Unstructured) bool {
		return !controlPlane(o)
	})); err != nil || !res.IsZero() {
		return res, err
	}
	r.ensureWatches(ctx, "security.istio.io")

	current := union(union(apply.Inventory(s.objects), apply.Inventory(render.CASecrets(s.objects))), createOnlyInventory(s.createOnly))
	stale := apply.Stale(previous, current)
	// A revision still listed in status but no longer renderable (its version left the catalog) keeps its objects
	// untouched until it is unused and retired.
	unrendered := map[string]bool{}
	for _, rs := range s.mesh.Status.Revisions {
		if !slices.ContainsFunc(s.revisions, func(rev render.Revision) bool { return render.RevisionLabelValue(rev.Name) == rs.Name }) {
			unrendered[rs.Name] = true
		}
	}
	remaining, err := r.applier(s.mesh).DeleteExcept(ctx, orderForDeletion(stale, s.mesh.Spec.Gateways), func(live *unstructured.Unstructured) bool {
		return unrendered[live.GetLabels()[render.LabelRevision]]
	})
	if pruned := len(stale) - len(remaining); pruned > 0 && err == nil {
		r.Recorder.Eventf(s.mesh, nil, "Normal", "Pruned", "Prune", "Removed %d objects the spec no longer needs", pruned)
	}
	s.mesh.Status.Inventory = &meshv1.Inventory{Entries: union(current, remaining)}
	if err != nil {
		s.outcome = status.Failed(meshv1.ReasonApplyFailed, err)
		return ctrl.Result{}, err
	}
	s.mesh.Status.Version = s.version.Version
	s.mesh.Status.ActiveRevision = cmp.Or(s.tagTarget, "default")
	return ctrl.Result{}, nil
}

// applyObjects applies objs after widening the inventory to cover them, so nothing written is ever forgotten. It
// requeues shortly when an object's kind is not served yet (its CRD, applied in the same pass, is not established
// yet), and stalls, rechecking, on an ownership conflict.
func (r *ServiceMeshReconciler) applyObjects(ctx context.Context, s *scope, objs []*unstructured.Unstructured) (ctrl.Result, error) {
	var previous []string
	if s.mesh.Status.Inventory != nil {
		previous = s.mesh.Status.Inventory.Entries
	}
	s.mesh.Status.Inventory = &meshv1.Inventory{Entries: union(previous, apply.Inventory(objs))}
	a := r.applier(s.mesh)
	a.Claims = s.claims
	res, err := a.Apply(ctx, objs)
	if meta.IsNoMatchError(err) && r.waitEstablished(ctx, objs) {
		// Istio's CRDs were applied a moment ago in this same call: once established, the rest goes in now rather
		// than after a requeue. The objects of the kinds they define are read from the API server until their
		// informers have synced (syncedOrLive).
		more, rerr := a.Apply(ctx, objs)
		more.Created = union(res.Created, more.Created)
		res, err = more, rerr
	}
	var conflict *apply.ConflictError
	if !errors.As(err, &conflict) {
		r.recordApply(s, res, previous)
		r.recordOwnership(s, res)
	}
	switch {
	case meta.IsNoMatchError(err):
		s.outcome = status.Outcome{Reason: meshv1.ReasonProgressing, Message: "Waiting for Istio's CRDs to be served", Reconciling: true}
		return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
	case conflict != nil:
		// Written nothing: the objects of this call are not the mesh's, so they leave the inventory again.
		s.mesh.Status.Inventory = &meshv1.Inventory{Entries: previous}
		return r.conflictOr(s, err)
	case err != nil:
		// Refused by admission or RBAC: Stalled, since retrying cannot help until someone changes the policy or the
		// spec, yet retried with backoff, since that change may happen outside the ServiceMesh.
		s.outcome = status.Failed(meshv1.ReasonApplyFailed, err)
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, nil
}

func (r *ServiceMeshReconciler) recordApply(s *scope, res apply.Result, previous []string) {
	// An object created again although the previous inventory had it was deleted by someone else.
	drifted := slices.Clone(res.Drifted)
	for _, id := range res.Created {
		if slices.Contains(previous, id) {
			drifted = append(drifted, id)
		}
	}
	switch {
	case len(res.Created) > 0 && s.mesh.Status.Version == "":
		r.Recorder.Eventf(s.mesh, nil, "Normal", "Installed", "Install", "Installed Istio %s: %d objects created", s.version.Version, len(res.Created))
	case s.mesh.Status.Version != "" && s.mesh.Status.Version != s.version.Version &&
		istio.Version{Version: s.mesh.Status.Version}.Minor() == s.version.Minor():
		r.Recorder.Eventf(s.mesh, nil, "Normal", "PatchUpgrade", "Upgrade", "Upgrading Istio %s to the patch release %s of the same minor: %d objects changed",
			s.mesh.Status.Version, s.version.Version, len(res.Created)+len(res.Updated))
	case s.mesh.Status.Version != "" && s.mesh.Status.Version != s.version.Version:
		r.Recorder.Eventf(s.mesh, nil, "Normal", "Upgraded", "Upgrade", "Upgrading Istio %s to %s: %d objects changed",
			s.mesh.Status.Version, s.version.Version, len(res.Created)+len(res.Updated))
	case len(drifted) > 0:
		r.Recorder.Eventf(s.mesh, nil, "Warning", "DriftRepaired", "Repair", "Restored %d objects changed or deleted outside Meshwright: %s",
			len(drifted), strings.Join(drifted, ", "))
	case res.Changed():
		r.Recorder.Eventf(s.mesh, nil, "Normal", "Configured", "Apply", "Applied %d changed objects", len(res.Created)+len(res.Updated))
	}
}

// assess reads the rollout of istiod (every revision for RevisionBased), walks the rows that depend on it (gateways,
// CNI, ztunnel), and summarises components into Ready.
func (r *ServiceMeshReconciler) assess(ctx context.Context, s *scope) (ctrl.Result, error) {
	var (
		ready, activeReady bool
		message            string
		result             ctrl.Result
		err                error
	)
	if revisionBased(s.mesh) {
		ready, message, result, err = r.assessRevisions(ctx, s)
		if active := s.revisionStatus(s.tagTarget); active != nil {
			activeReady = active.Ready
		}
	} else {
		ready, message = r.istiodReady(ctx, s.mesh.Spec.Namespace, "istiod")
		activeReady = ready
		rs := meshv1.RevisionStatus{Name: "default", Version: s.version.Version, Ready: ready}
		rs.InUsePods, rs.InUseNamespaces, err = r.usage(ctx, s, "default")
		s.mesh.Status.Revisions = []meshv1.RevisionStatus{rs}
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	state := meshv1.ComponentProgressing
	if ready {
		state = meshv1.ComponentReady
	}
	s.mesh.Status.Components = []meshv1.ComponentStatus{
		{Name: render.ComponentBase, State: meshv1.ComponentReady,
			Message: fmt.Sprintf("Istio %s CRDs and cluster configuration applied", s.version.Version)},
		{Name: render.ComponentIstiod, State: state, Message: message},
	}
	recheck, err := r.reportGatewayAPI(ctx, s)
	if err != nil {
		return ctrl.Result{}, err
	}
	if recheck {
		result = soonest(result, 15*time.Second)
	}
	walk, halted, err := r.walkDataPlane(ctx, s, activeReady)
	switch {
	case err != nil:
		return ctrl.Result{}, err
	case halted != nil:
		return *halted, nil
	}
	if len(walk.addonsWaiting) > 0 {
		result = soonest(result, rolloutRecheck)
	}

	switch {
	case s.upgradeFailed != "":
		status.SetComponent(s.mesh, meshv1.ConditionControlPlaneReady, false, meshv1.ReasonUpgradeFailed, s.upgradeFailed)
		s.outcome = status.Outcome{Reason: meshv1.ReasonUpgradeFailed, Message: s.upgradeFailed, Stalled: true}
		return soonest(result, rolloutRecheck), nil
	case !ready:
		reason := meshv1.ReasonProgressing
		if s.tagTarget != s.desiredRevision {
			reason = meshv1.ReasonUpgrading
		}
		status.SetComponent(s.mesh, meshv1.ConditionControlPlaneReady, false, reason, message)
		s.outcome = status.Outcome{Reason: reason, Message: "Control plane rolling out: " + message, Reconciling: true}
		return soonest(result, rolloutRecheck), nil
	}
	status.SetComponent(s.mesh, meshv1.ConditionControlPlaneReady, true, meshv1.ReasonReady, message)
	if !walk.ready {
		s.outcome = status.Outcome{Reason: meshv1.ReasonProgressing, Message: "Control plane ready; waiting for " + walk.waiting, Reconciling: true}
		return soonest(result, rolloutRecheck), nil
	}
	readyMessage := fmt.Sprintf("Istio %s control plane is ready", s.version.Version)
	if extra := readyComponents(s.mesh.Spec); extra != "" {
		readyMessage = fmt.Sprintf("Istio %s control plane and %s are ready", s.version.Version, extra)
	}
	if meta.FindStatusCondition(s.mesh.Status.Conditions, meshv1.ConditionVersionSupported) != nil {
		readyMessage += " (past its end of life: see the VersionSupported condition)"
	}
	if len(walk.addonsWaiting) > 0 {
		readyMessage += "; add-ons not ready (see AddonsReady): " + strings.Join(walk.addonsWaiting, "; ")
	}
	s.outcome = status.Outcome{Ready: true, Reason: meshv1.ReasonReady, Message: readyMessage}
	// With the control plane ready, move workloads still on an old revision (sets its own outcome while it runs).
	rollout, err := r.rolloutWorkloads(ctx, s)
	if err != nil {
		s.outcome = status.Failed(meshv1.ReasonWorkloadRolloutFailed, err)
		return ctrl.Result{}, err
	}
	if rollout.RequeueAfter > 0 {
		result = soonest(result, rollout.RequeueAfter)
	}
	return result, nil
}

func union(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// orderForDeletion sorts inventory entries so that webhooks go first (a webhook left pointing at a deleted istiod
// would block pod creation), then the gateways (they stop taking traffic before the control plane goes), then the
// DaemonSets of the node agents, then everything else from workloads to definitions, and the CA Secrets after the
// Certificates that write them.
func orderForDeletion(ids []string, gateways []meshv1.Gateway) []string {
	out := slices.Clone(ids)
	rank := func(e string) (int, render.Stage) {
		id, err := apply.ParseID(e)
		if err != nil {
			return 3, render.StageConfig
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(id.GroupKind.WithVersion(""))
		stage := render.StageOf(u)
		switch {
		case isCASecret(e):
			return 4, stage
		case stage == render.StageWebhooks:
			return 0, stage
		case slices.ContainsFunc(gateways, func(g meshv1.Gateway) bool { return g.Namespace == id.Namespace && g.Name == id.Name }):
			return 1, stage
		case id.GroupKind.Kind == "DaemonSet":
			return 2, stage
		}
		return 3, stage
	}
	slices.SortStableFunc(out, func(a, b string) int {
		ra, sa := rank(a)
		rb, sb := rank(b)
		return cmp.Or(cmp.Compare(ra, rb), cmp.Compare(sb, sa))
	})
	return out
}

// readyComponents names the data-plane components a Ready mesh runs besides its control plane ("" for none).
func readyComponents(spec meshv1.ServiceMeshSpec) string {
	var parts []string
	switch n := len(spec.Gateways); n {
	case 0:
	case 1:
		parts = append(parts, "1 gateway")
	default:
		parts = append(parts, fmt.Sprintf("%d gateways", n))
	}
	if render.CNIEnabled(spec) {
		parts = append(parts, "the CNI node agent")
	}
	if render.Ambient(spec) {
		parts = append(parts, "ztunnel")
	}
	switch len(parts) {
	case 0:
		return ""
	case 1:
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// crdEstablishedWait bounds how long a reconcile waits, in one pass, for the CRDs it has just applied to be served.
const crdEstablishedWait = 10 * time.Second

// waitEstablished waits until every CRD among objs is Established, and reports whether they all are. The cache holds
// CRDs as metadata only: their status is watched on the API server (crdWatch, in protobuf: a status change of each
// of Istio's CRDs would otherwise be decoded from JSON whole), at most crdEstablishedWait.
func (r *ServiceMeshReconciler) waitEstablished(ctx context.Context, objs []*unstructured.Unstructured) bool {
	want := map[string]bool{}
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			want[o.GetName()] = true
		}
	}
	if len(want) == 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, crdEstablishedWait)
	defer cancel()
	seen := func(crd *apiextensionsv1.CustomResourceDefinition) bool {
		if want[crd.Name] && apiextensionshelpers.IsCRDConditionTrue(crd, apiextensionsv1.Established) {
			delete(want, crd.Name)
		}
		return len(want) == 0
	}
	if r.crdWatch == nil {
		return false // a reconciler made without NewServiceMeshReconciler: the caller requeues
	}
	// Without a resourceVersion the watch starts with the CRDs as they are now, then their changes.
	w, err := r.crdWatch.Watch(ctx, &apiextensionsv1.CustomResourceDefinitionList{}, client.MatchingLabels{render.LabelManagedBy: render.ManagedBy})
	if err != nil {
		return false
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		if crd, ok := ev.Object.(*apiextensionsv1.CustomResourceDefinition); ok && seen(crd) {
			return true
		}
	}
	return false
}
