// Package readiness owns one question for every workload kind Meshwright renders: has it finished rolling out its
// current spec? Deployments, DaemonSets and StatefulSets answer the same way: the controller observed the latest
// generation, every replica runs the current template, and every one of them is available. A rollout in progress is
// never ready, however many old replicas still serve. Messages are written for users.
package readiness

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// Deployment reports whether a Deployment finished rolling out: the latest generation observed, every replica
// updated and available, no old replica left, and the Available condition not False.
func Deployment(d *appsv1.Deployment) (bool, string) {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	switch {
	case s.ObservedGeneration < d.Generation:
		return false, fmt.Sprintf("Deployment %s/%s: waiting for the rollout to start", d.Namespace, d.Name)
	case s.UpdatedReplicas < want:
		return false, fmt.Sprintf("Deployment %s/%s: %d of %d replicas updated", d.Namespace, d.Name, s.UpdatedReplicas, want)
	case s.Replicas > s.UpdatedReplicas:
		return false, fmt.Sprintf("Deployment %s/%s: %d old replicas pending termination", d.Namespace, d.Name, s.Replicas-s.UpdatedReplicas)
	case s.AvailableReplicas < s.UpdatedReplicas:
		return false, fmt.Sprintf("Deployment %s/%s: %d of %d updated replicas available", d.Namespace, d.Name, s.AvailableReplicas, s.UpdatedReplicas)
	}
	for _, c := range s.Conditions {
		if c.Type == appsv1.DeploymentAvailable && c.Status != corev1.ConditionTrue {
			return false, fmt.Sprintf("Deployment %s/%s is not available: %s", d.Namespace, d.Name, c.Message)
		}
	}
	return true, fmt.Sprintf("Deployment %s/%s: %d replicas available", d.Namespace, d.Name, s.AvailableReplicas)
}

// DaemonSet reports whether a DaemonSet finished rolling out: the latest generation observed, a pod of the current
// template scheduled on every node that should run one, and all of them ready and available. A DaemonSet whose
// controller has not seen its latest generation is not ready, even if every old pod is.
func DaemonSet(ds *appsv1.DaemonSet) (bool, string) {
	s := ds.Status
	switch {
	case s.ObservedGeneration < ds.Generation:
		return false, fmt.Sprintf("DaemonSet %s/%s: waiting for the rollout to start", ds.Namespace, ds.Name)
	case s.UpdatedNumberScheduled < s.DesiredNumberScheduled:
		return false, fmt.Sprintf("DaemonSet %s/%s: %d of %d nodes updated", ds.Namespace, ds.Name, s.UpdatedNumberScheduled, s.DesiredNumberScheduled)
	case s.NumberReady < s.DesiredNumberScheduled:
		return false, fmt.Sprintf("DaemonSet %s/%s: %d of %d pods ready", ds.Namespace, ds.Name, s.NumberReady, s.DesiredNumberScheduled)
	case s.NumberAvailable < s.DesiredNumberScheduled:
		return false, fmt.Sprintf("DaemonSet %s/%s: %d of %d pods available", ds.Namespace, ds.Name, s.NumberAvailable, s.DesiredNumberScheduled)
	}
	return true, fmt.Sprintf("DaemonSet %s/%s: ready on %d nodes", ds.Namespace, ds.Name, s.NumberReady)
}

// StatefulSet reports whether a StatefulSet finished rolling out: the latest generation observed, every replica on
// the update revision, and all of them ready and available.
func StatefulSet(ss *appsv1.StatefulSet) (bool, string) {
	want := int32(1)
	if ss.Spec.Replicas != nil {
		want = *ss.Spec.Replicas
	}
	s := ss.Status
	switch {
	case s.ObservedGeneration < ss.Generation:
		return false, fmt.Sprintf("StatefulSet %s/%s: waiting for the rollout to start", ss.Namespace, ss.Name)
	case s.UpdatedReplicas < want || (s.UpdateRevision != "" && s.CurrentRevision != s.UpdateRevision):
		return false, fmt.Sprintf("StatefulSet %s/%s: %d of %d replicas updated", ss.Namespace, ss.Name, s.UpdatedReplicas, want)
	case s.ReadyReplicas < want:
		return false, fmt.Sprintf("StatefulSet %s/%s: %d of %d replicas ready", ss.Namespace, ss.Name, s.ReadyReplicas, want)
	case s.AvailableReplicas < want:
		return false, fmt.Sprintf("StatefulSet %s/%s: %d of %d replicas available", ss.Namespace, ss.Name, s.AvailableReplicas, want)
	}
	return true, fmt.Sprintf("StatefulSet %s/%s: %d replicas available", ss.Namespace, ss.Name, s.AvailableReplicas)
}

// Workload reports the rollout of a live Deployment, DaemonSet or StatefulSet read unstructured. ok is false for
// any other kind, or an object that does not convert.
func Workload(u *unstructured.Unstructured) (ready bool, message string, ok bool) {
	var err error
	rollout := rolloutFields(u.Object)
	switch u.GetKind() {
	case "Deployment":
		d := &appsv1.Deployment{}
		if err = runtime.DefaultUnstructuredConverter.FromUnstructured(rollout, d); err == nil {
			ready, message = Deployment(d)
		}
	case "DaemonSet":
		ds := &appsv1.DaemonSet{}
		if err = runtime.DefaultUnstructuredConverter.FromUnstructured(rollout, ds); err == nil {
			ready, message = DaemonSet(ds)
		}
	case "StatefulSet":
		ss := &appsv1.StatefulSet{}
		if err = runtime.DefaultUnstructuredConverter.FromUnstructured(rollout, ss); err == nil {
			ready, message = StatefulSet(ss)
		}
	default:
		return false, "", false
	}
	if err != nil {
		return false, fmt.Sprintf("%s %s/%s: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err), false
	}
	return ready, message, true
}

// rolloutFields is the part of a workload its rollout is judged on: metadata, status and the spec's replicas. The
// pod template, most of a workload and of converting it, is left out (shallowly: obj is not modified).
func rolloutFields(obj map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range []string{"apiVersion", "kind", "metadata", "status"} {
		if v, ok := obj[k]; ok {
			out[k] = v
		}
	}
	if spec, ok := obj["spec"].(map[string]any); ok {
		if replicas, ok := spec["replicas"]; ok {
			out["spec"] = map[string]any{"replicas": replicas}
		}
	}
	return out
}
