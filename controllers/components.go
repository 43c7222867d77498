package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/gatewayapi"
	"github.com/meshwright/meshwright/internal/readiness"
	"github.com/meshwright/meshwright/internal/render"
	"github.com/meshwright/meshwright/internal/status"
)

// component is one row of the reconcile table: the objects render labels with its name, what must be ready before
// they are applied, the condition it reports and whether Ready waits for it. The control plane rows (no after) are
// applied together by the apply phase; the others are walked in table order once the control plane is assessed.
// Adding a component is adding a row here and a renderer in render.Components.
type component struct {
	name string
	// condition is the condition type the row reports ("" for the control plane's rows, which ControlPlaneReady and
	// CertificatesReady cover).
	condition string
	// after are the rows that must be ready before this row's objects are applied.
	after []string
	// optional rows never hold Ready: not being ready shows only in their own condition.
	optional bool
	// describe names the row's status entries, one per rendered workload by default.
	describe func(s *scope, workload *unstructured.Unstructured) string
}

var components = []component{
	{name: render.ComponentBase},
	{name: render.ComponentCertificates},
	{name: render.ComponentIstiod},
	{name: render.ComponentMeshPolicy},
	{name: render.ComponentGateway, condition: meshv1.ConditionGatewaysReady, after: []string{render.ComponentIstiod},
		describe: func(_ *scope, w *unstructured.Unstructured) string {
			return "gateway/" + w.GetNamespace() + "/" + w.GetLabels()[render.LabelGateway]
		}},
	{name: render.ComponentCNI, condition: meshv1.ConditionCNIReady, after: []string{render.ComponentIstiod}},
	{name: render.ComponentZtunnel, condition: meshv1.ConditionZtunnelReady, after: []string{render.ComponentIstiod, render.ComponentCNI}},
	// The add-ons follow the control plane and never hold Ready.
	{name: render.ComponentPrometheus, condition: meshv1.ConditionAddonsReady, after: []string{render.ComponentIstiod}, optional: true},
	{name: render.ComponentGrafana, condition: meshv1.ConditionAddonsReady, after: []string{render.ComponentIstiod}, optional: true},
	{name: render.ComponentTracing, condition: meshv1.ConditionAddonsReady, after: []string{render.ComponentIstiod}, optional: true},
	{name: render.ComponentKiali, condition: meshv1.ConditionAddonsReady, after: []string{render.ComponentIstiod}, optional: true},
}

// controlPlane reports whether an object belongs to a row applied by the apply phase.
func controlPlane(o *unstructured.Unstructured) bool {
	name := o.GetLabels()[render.LabelComponent]
	i := slices.IndexFunc(components, func(c component) bool { return c.name == name })
	return i < 0 || len(components[i].after) == 0 || o.GetKind() == "Namespace"
}

// rowObjects are the rendered objects of a row.
func (s *scope) rowObjects(name string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range s.objects {
		if o.GetLabels()[render.LabelComponent] == name {
			out = append(out, o)
		}
	}
	return out
}

// rowResult is what walking one row found.
type rowResult struct {
	ready   bool
	message string
}

// walkDataPlane walks the rows after the control plane in table order. A row whose dependencies are ready is applied
// and assessed; one whose dependencies are not keeps whatever of it is live, untouched, and waits. activeReady says
// whether istiod of the revision the data plane follows (where the tags point) is ready: gateways are injected by
// its injector. Rows sharing a condition (the add-ons' AddonsReady) report it together. It returns whether every row
// Ready waits for is ready, what the first that is not waits for, what optional rows are not ready, or, with halted,
// the result of an apply that must end the reconcile (a kind not served yet, an ownership conflict: the outcome is set).
func (r *ServiceMeshReconciler) walkDataPlane(ctx context.Context, s *scope, activeReady bool) (walk dataPlaneWalk, halted *ctrl.Result, err error) {
	results := map[string]rowResult{render.ComponentIstiod: {ready: activeReady}}
	walk.ready = true
	type conditionState struct {
		ready           bool
		reason          string
		messages        []string
		present, failed bool
	}
	conditions := map[string]*conditionState{}
	var order []string
	s.mesh.Status.Gateways = nil
	for _, c := range components {
		if len(c.after) == 0 {
			continue
		}
		cs := conditions[c.condition]
		if cs == nil {
			cs = &conditionState{ready: true, reason: meshv1.ReasonReady}
			conditions[c.condition] = cs
			order = append(order, c.condition)
		}
		objs := s.rowObjects(c.name)
		if len(objs) == 0 {
			continue
		}
		cs.present = true
		var waiting []string
		for _, dep := range c.after {
			if res, ok := results[dep]; ok && !res.ready {
				waiting = append(waiting, dep)
			}
		}
		var res rowResult
		if len(waiting) > 0 {
			res.message = fmt.Sprintf("waiting for %s to be ready", strings.Join(waiting, " and "))
			cs.reason = meshv1.ReasonWaiting
			s.mesh.Status.Components = append(s.mesh.Status.Components,
				meshv1.ComponentStatus{Name: c.name, State: meshv1.ComponentProgressing, Message: res.message})
		} else {
			if c.optional {
				var missing string
				objs, missing = r.servedOnly(objs)
				if missing != "" {
					res.message = missing
					cs.reason = meshv1.ReasonProgressing
				}
			}
			if err := r.ensureCreateOnly(ctx, s, c.name); err != nil {
				return walk, nil, err
			}
			if result, err := r.applyObjects(ctx, s, objs); err != nil || !result.IsZero() {
				return walk, &result, err
			}
			if c.name == render.ComponentPrometheus {
				r.ensureWatches(ctx, "monitoring.coreos.com")
			}
			assessed, err := r.assessRow(ctx, s, c, objs)
			if err != nil {
				return walk, nil, err
			}
			res.ready = assessed.ready && res.message == ""
			res.message = strings.Trim(res.message+"; "+assessed.message, "; ")
			if !res.ready && cs.reason == meshv1.ReasonReady {
				cs.reason = meshv1.ReasonProgressing
			}
		}
		results[c.name] = res
		if res.message != "" && (!res.ready || cs.ready) {
			cs.messages = append(cs.messages, res.message)
		}
		if !res.ready {
			if cs.ready {
				cs.messages = []string{res.message} // the condition explains what is not ready
			}
			cs.ready = false
			switch {
			case c.optional:
				walk.addonsWaiting = append(walk.addonsWaiting, c.name+": "+res.message)
			case walk.ready:
				walk.ready, walk.waiting = false, c.name+": "+res.message
			}
		}
	}
	for _, t := range order {
		cs := conditions[t]
		if !cs.present {
			meta.RemoveStatusCondition(&s.mesh.Status.Conditions, t)
			continue
		}
		if t == meshv1.ConditionAddonsReady && !cs.ready {
			if c := meta.FindStatusCondition(s.mesh.Status.Conditions, t); c == nil || c.Status != metav1.ConditionFalse {
				r.Recorder.Eventf(s.mesh, nil, "Warning", "AddonNotReady", "Assess",
					"Add-ons not ready (the mesh stays Ready): %s", strings.Join(walk.addonsWaiting, "; "))
			}
		}
		status.SetComponent(s.mesh, t, cs.ready, cs.reason, strings.Join(cs.messages, "; "))
	}
	return walk, nil, nil
}

// dataPlaneWalk is what walking the rows after the control plane found.
type dataPlaneWalk struct {
	// ready: every row Ready waits for is ready; waiting says what the first that is not waits for.
	ready   bool
	waiting string
	// addonsWaiting explains the optional rows (add-ons) that are not ready; they never hold Ready.
	addonsWaiting []string
}

// servedOnly leaves out the objects whose kinds the API server does not serve (the Prometheus Operator's monitors
// without its CRDs) and says which.
func (r *ServiceMeshReconciler) servedOnly(objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, string) {
	var kept []*unstructured.Unstructured
	var missing []string
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		if _, err := r.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version); meta.IsNoMatchError(err) {
			if !slices.Contains(missing, gvk.Kind) {
				missing = append(missing, gvk.Kind)
			}
			continue
		}
		kept = append(kept, o)
	}
	if len(missing) == 0 {
		return kept, ""
	}
	return kept, fmt.Sprintf("%s not served: install the CRDs of %s", strings.Join(missing, ", "), objs[0].GroupVersionKind().Group)
}

// assessRow reads the rollout of every workload of a row from the cache (the watches on them trigger the next
// reconcile) and adds a status entry for each.
func (r *ServiceMeshReconciler) assessRow(ctx context.Context, s *scope, c component, objs []*unstructured.Unstructured) (rowResult, error) {
	res := rowResult{ready: true}
	var pending, done []string
	for _, o := range objs {
		if !slices.Contains([]string{"Deployment", "DaemonSet", "StatefulSet"}, o.GetKind()) {
			continue
		}
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(o.GroupVersionKind())
		ready, msg := false, ""
		switch err := r.Get(ctx, client.ObjectKeyFromObject(o), live); {
		case apierrors.IsNotFound(err):
			msg = fmt.Sprintf("%s %s/%s not created yet", o.GetKind(), o.GetNamespace(), o.GetName())
		case err != nil:
			return res, fmt.Errorf("reading %s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		default:
			ready, msg, _ = readiness.Workload(live)
		}
		name := c.name
		if c.describe != nil {
			name = c.describe(s, o)
		}
		state := meshv1.ComponentReady
		if !ready {
			state, res.ready = meshv1.ComponentProgressing, false
			pending = append(pending, msg)
		} else {
			done = append(done, msg)
		}
		s.mesh.Status.Components = append(s.mesh.Status.Components, meshv1.ComponentStatus{Name: name, State: state, Message: msg})
		if c.name == render.ComponentGateway {
			gs, err := r.gatewayStatus(ctx, o, live)
			if err != nil {
				return res, err
			}
			s.mesh.Status.Gateways = append(s.mesh.Status.Gateways, gs)
		}
	}
	if res.ready {
		res.message = strings.Join(done, "; ")
	} else {
		res.message = strings.Join(pending, "; ")
	}
	return res, nil
}

// gatewayStatus reports a gateway's ready replicas and its Service's address: a load balancer's once assigned, else
// the cluster IP. Readiness never waits for a load balancer, which some clusters never provide.
func (r *ServiceMeshReconciler) gatewayStatus(ctx context.Context, desired, live *unstructured.Unstructured) (meshv1.GatewayStatus, error) {
	gs := meshv1.GatewayStatus{Name: desired.GetLabels()[render.LabelGateway], Namespace: desired.GetNamespace()}
	ready, _, _ := unstructured.NestedInt64(live.Object, "status", "readyReplicas")
	gs.ReadyReplicas = int32(ready)
	gs.Revision, _, _ = unstructured.NestedString(desired.Object, "spec", "template", "metadata", "labels", "istio.io/rev")
	if gs.Revision == "" {
		gs.Revision = "default"
	}
	svc := &corev1.Service{}
	switch err := r.Get(ctx, client.ObjectKey{Namespace: desired.GetNamespace(), Name: desired.GetName()}, svc); {
	case apierrors.IsNotFound(err):
		return gs, nil
	case err != nil:
		return gs, fmt.Errorf("reading the Service of gateway %s/%s: %w", gs.Namespace, gs.Name, err)
	}
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if gs.Address = in.IP; gs.Address == "" {
			gs.Address = in.Hostname
		}
		if gs.Address != "" {
			return gs, nil
		}
	}
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		gs.Address = svc.Spec.ClusterIP
	}
	return gs, nil
}

// checkGatewayNamespaces stalls the mesh when a gateway's namespace turns injection off: the gateway's pods would
// run without their proxy. The namespace is read from the metadata cache of namespaces.
func (r *ServiceMeshReconciler) checkGatewayNamespaces(ctx context.Context, s *scope) error {
	if r.usageCache == nil {
		return nil
	}
	for i, gw := range s.mesh.Spec.Gateways {
		ns := &metav1.PartialObjectMetadata{}
		ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
		switch err := r.usageCache.Get(ctx, client.ObjectKey{Name: gw.Namespace}, ns); {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return fmt.Errorf("reading namespace %s: %w", gw.Namespace, err)
		}
		if ns.Labels["istio-injection"] == "disabled" {
			return s.stalled(meshv1.ReasonInvalidSpec, fmt.Sprintf(
				"spec.gateways[%d].namespace: namespace %s is labelled istio-injection=disabled, so gateway %s would run without its proxy; "+
					"choose another namespace or remove the label", i, gw.Namespace, gw.Name))
		}
	}
	return nil
}

var crdGVK = apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition")

// skipForeignGatewayAPI leaves out of the render the Gateway API CRDs someone else installed (another gateway
// implementation, a platform team, often the experimental channel): they are never updated, pruned or deleted. A CRD
// Meshwright installed is in the labelled cache; any other one is looked up on the API server.
func (r *ServiceMeshReconciler) skipForeignGatewayAPI(ctx context.Context, s *scope) error {
	var foreign []string
	keep := s.objects[:0:0]
	for _, o := range s.objects {
		if o.GetLabels()[render.LabelComponent] != render.ComponentGatewayAPI {
			keep = append(keep, o)
			continue
		}
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(crdGVK)
		err := r.Get(ctx, client.ObjectKey{Name: o.GetName()}, live)
		if apierrors.IsNotFound(err) {
			meta := &metav1.PartialObjectMetadata{}
			meta.SetGroupVersionKind(crdGVK)
			if err = r.APIReader.Get(ctx, client.ObjectKey{Name: o.GetName()}, meta); err == nil {
				live.SetLabels(meta.Labels)
				live.SetAnnotations(meta.Annotations)
				live.SetName(meta.Name)
			}
		}
		switch {
		case apierrors.IsNotFound(err):
			keep = append(keep, o)
			continue
		case err != nil:
			return fmt.Errorf("reading CustomResourceDefinition %s: %w", o.GetName(), err)
		}
		if other, why := gatewayapi.Foreign(live); other {
			foreign = append(foreign, why)
			continue
		}
		keep = append(keep, o)
	}
	s.objects = keep
	s.foreignGatewayAPI = foreign
	return nil
}

// reportGatewayAPI says, for a mesh that installs the Gateway API CRDs or runs ambient (whose waypoints are Gateways),
// whether the CRDs are there and what istiod reports on its GatewayClass. GatewayClasses are not watched (istiod, not
// Meshwright, creates them): until istiod accepted its class, recheck says to look again soon.
func (r *ServiceMeshReconciler) reportGatewayAPI(ctx context.Context, s *scope) (recheck bool, err error) {
	installs := s.mesh.Spec.GatewayAPI != nil && s.mesh.Spec.GatewayAPI.InstallCRDs
	ambient := render.Ambient(s.mesh.Spec)
	if !installs && !ambient {
		meta.RemoveStatusCondition(&s.mesh.Status.Conditions, meshv1.ConditionWaypointsAvailable)
		return false, nil
	}
	crd := &metav1.PartialObjectMetadata{}
	crd.SetGroupVersionKind(crdGVK)
	served := true
	switch err := r.APIReader.Get(ctx, client.ObjectKey{Name: "gateways." + gatewayapi.Group}, crd); {
	case apierrors.IsNotFound(err):
		served = false
	case err != nil:
		return false, fmt.Errorf("reading the Gateway API CRDs: %w", err)
	}
	message := "Gateway API CRDs installed"
	if len(s.foreignGatewayAPI) > 0 {
		message = "Gateway API CRDs present; left as they are: " + strings.Join(s.foreignGatewayAPI, "; ")
	}
	state := meshv1.ComponentReady
	if !served {
		state, message = meshv1.ComponentProgressing, "Gateway API CRDs are not installed"
	} else {
		accepted := r.gatewayClassAccepted(ctx)
		recheck = !strings.HasSuffix(accepted, "Accepted=True")
		message += "; " + accepted
	}
	s.mesh.Status.Components = append(s.mesh.Status.Components, meshv1.ComponentStatus{Name: render.ComponentGatewayAPI, State: state, Message: message})
	if ambient {
		if served {
			status.SetComponent(s.mesh, meshv1.ConditionWaypointsAvailable, true, meshv1.ReasonReady,
				"The Gateway API CRDs exist: waypoints (class istio-waypoint) can be deployed for L7 policy")
		} else {
			status.SetComponent(s.mesh, meshv1.ConditionWaypointsAvailable, false, meshv1.ReasonGatewayAPIMissing,
				"The mesh serves L4 traffic; waypoints (L7) need the Gateway API CRDs: set spec.gatewayAPI.installCRDs: true or install them yourself")
		}
	}
	return recheck, nil
}

// gatewayClassAccepted reads the Accepted condition istiod sets on its GatewayClass "istio".
func (r *ServiceMeshReconciler) gatewayClassAccepted(ctx context.Context) string {
	gc := &unstructured.Unstructured{}
	gc.SetGroupVersionKind(schema.GroupVersionKind{Group: gatewayapi.Group, Version: "v1", Kind: "GatewayClass"})
	if err := r.APIReader.Get(ctx, client.ObjectKey{Name: "istio"}, gc); err != nil {
		return "GatewayClass istio not created by istiod yet"
	}
	conds, _, _ := unstructured.NestedSlice(gc.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Accepted" {
			return fmt.Sprintf("GatewayClass istio Accepted=%v", m["status"])
		}
	}
	return "GatewayClass istio not accepted yet"
}

// checkAmbientValues stalls an ambient mesh whose raw values turn off what ambient needs. The API server cannot check
// them (CEL does not see into free-form values), so the reconcile does, before anything is rendered.
func checkAmbientValues(s *scope) error {
	if !render.Ambient(s.mesh.Spec) || s.mesh.Spec.Values == nil {
		return nil
	}
	values := map[string]any{}
	if err := json.Unmarshal(s.mesh.Spec.Values.Raw, &values); err != nil {
		return nil // the render reports malformed values
	}
	if enabled, found, _ := unstructured.NestedFieldNoCopy(values, "pilot", "cni", "enabled"); found && enabled != true {
		return s.stalled(meshv1.ReasonInvalidSpec,
			"spec.values.pilot.cni.enabled cannot be false with profile ambient: ambient mode needs the Istio CNI node agent")
	}
	if v, found, _ := unstructured.NestedFieldNoCopy(values, "pilot", "env", "PILOT_ENABLE_AMBIENT"); found && fmt.Sprint(v) != "true" {
		return s.stalled(meshv1.ReasonInvalidSpec,
			"spec.values.pilot.env.PILOT_ENABLE_AMBIENT cannot be turned off with profile ambient: istiod would not serve ztunnel")
	}
	return nil
}
