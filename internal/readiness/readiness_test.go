package readiness

import (
	"k8s.io/apimachinery/pkg/api/equality"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
)

func daemonSet(gen, observed, desired, updated, ready, available int32) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "istio-cni-node", Generation: int64(gen)},
		Status: appsv1.DaemonSetStatus{ObservedGeneration: int64(observed), DesiredNumberScheduled: desired,
			UpdatedNumberScheduled: updated, NumberReady: ready, NumberAvailable: available, CurrentNumberScheduled: desired},
	}
}

func TestDaemonSet(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ds    *appsv1.DaemonSet
		ready bool
		want  string
	}{
		{"a DaemonSet rolled out on every node is ready", daemonSet(2, 2, 3, 3, 3, 3), true, "ready on 3 nodes"},
		{"an old generation is not ready even when every old pod is", daemonSet(3, 2, 3, 3, 3, 3), false, "waiting for the rollout to start"},
		{"a node still on the old template is not ready", daemonSet(2, 2, 3, 2, 3, 3), false, "2 of 3 nodes updated"},
		{"an updated pod that is not ready yet is not ready", daemonSet(2, 2, 3, 3, 2, 2), false, "2 of 3 pods ready"},
		{"a ready pod not yet available is not ready", daemonSet(2, 2, 3, 3, 3, 1), false, "1 of 3 pods available"},
		{"a DaemonSet with no node to run on is ready", daemonSet(1, 1, 0, 0, 0, 0), true, "ready on 0 nodes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ready, msg := DaemonSet(tc.ds)
			if ready != tc.ready || !strings.Contains(msg, tc.want) {
				t.Errorf("DaemonSet() = %v, %q; want %v and a message containing %q", ready, msg, tc.ready, tc.want)
			}
		})
	}
}

func TestDeployment(t *testing.T) {
	dep := func(gen, observed, want, replicas, updated, available int32, availableCond corev1.ConditionStatus) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: "istio-ingress", Name: "gw", Generation: int64(gen)},
			Spec:       appsv1.DeploymentSpec{Replicas: ptr.To(want)},
			Status: appsv1.DeploymentStatus{ObservedGeneration: int64(observed), Replicas: replicas, UpdatedReplicas: updated,
				AvailableReplicas: available, Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: availableCond}}},
		}
	}
	for _, tc := range []struct {
		name  string
		d     *appsv1.Deployment
		ready bool
		want  string
	}{
		{"a rolled-out Deployment is ready", dep(1, 1, 2, 2, 2, 2, corev1.ConditionTrue), true, "2 replicas available"},
		{"an unobserved generation is not ready", dep(2, 1, 2, 2, 2, 2, corev1.ConditionTrue), false, "waiting for the rollout to start"},
		{"a surge replica of the new template still starting is not ready", dep(2, 2, 2, 3, 1, 2, corev1.ConditionTrue), false, "1 of 2 replicas updated"},
		{"an old replica pending termination is not ready", dep(2, 2, 2, 3, 2, 2, corev1.ConditionTrue), false, "1 old replicas pending termination"},
		{"updated replicas not yet available are not ready", dep(2, 2, 2, 2, 2, 1, corev1.ConditionTrue), false, "1 of 2 updated replicas available"},
		{"an Available condition False is not ready", dep(1, 1, 1, 1, 1, 1, corev1.ConditionFalse), false, "is not available"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ready, msg := Deployment(tc.d)
			if ready != tc.ready || !strings.Contains(msg, tc.want) {
				t.Errorf("Deployment() = %v, %q; want %v and a message containing %q", ready, msg, tc.ready, tc.want)
			}
		})
	}
}

func TestStatefulSet(t *testing.T) {
	ss := func(gen, observed, updated, ready, available int32, current, update string) *appsv1.StatefulSet {
		return &appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Namespace: "obs", Name: "db", Generation: int64(gen)},
			Spec:       appsv1.StatefulSetSpec{Replicas: ptr.To(int32(2))},
			Status: appsv1.StatefulSetStatus{ObservedGeneration: int64(observed), UpdatedReplicas: updated, ReadyReplicas: ready,
				AvailableReplicas: available, CurrentRevision: current, UpdateRevision: update},
		}
	}
	for _, tc := range []struct {
		name  string
		s     *appsv1.StatefulSet
		ready bool
	}{
		{"a rolled-out StatefulSet is ready", ss(1, 1, 2, 2, 2, "r1", "r1"), true},
		{"an unobserved generation is not ready", ss(2, 1, 2, 2, 2, "r1", "r1"), false},
		{"replicas on the old revision are not ready", ss(2, 2, 2, 2, 2, "r1", "r2"), false},
		{"a replica not ready is not ready", ss(1, 1, 2, 1, 1, "r1", "r1"), false},
		{"a ready replica not yet available is not ready", ss(1, 1, 2, 2, 1, "r1", "r1"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if ready, msg := StatefulSet(tc.s); ready != tc.ready {
				t.Errorf("StatefulSet() = %v, %q; want %v", ready, msg, tc.ready)
			}
		})
	}
}

func TestWorkloadReadsEveryKindUnstructured(t *testing.T) {
	for kind, obj := range map[string]runtime.Object{
		"DaemonSet":   daemonSet(3, 2, 1, 1, 1, 1),
		"Deployment":  &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Generation: 2}, Status: appsv1.DeploymentStatus{ObservedGeneration: 1}},
		"StatefulSet": &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Generation: 2}, Status: appsv1.StatefulSetStatus{ObservedGeneration: 1}},
	} {
		raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{Object: raw}
		u.SetKind(kind)
		ready, msg, ok := Workload(u)
		if !ok || ready || !strings.Contains(msg, "waiting for the rollout to start") {
			t.Errorf("Workload(%s) = %v, %q, %v; want not ready, waiting for the rollout to start", kind, ready, msg, ok)
		}
	}
	cm := &unstructured.Unstructured{}
	cm.SetKind("ConfigMap")
	if _, _, ok := Workload(cm); ok {
		t.Error("Workload(ConfigMap) claims to know a ConfigMap's rollout")
	}
}

// Workload judges a rollout on metadata, status and spec.replicas only, and leaves the object it reads as it was.
func TestWorkloadReadsReplicasAndLeavesTheObjectAlone(t *testing.T) {
	replicas := int32(3)
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "istiod", Namespace: "istio-system", Generation: 1},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "discovery", Image: "istio/pilot"}}}}},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 2}}
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(d)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: raw}
	u.SetKind("Deployment")
	before := u.DeepCopy()
	ready, msg, ok := Workload(u)
	if !ok || ready || !strings.Contains(msg, "2 of 3 replicas updated") {
		t.Errorf("Workload = %v, %q, %v; want not ready, 2 of 3 replicas updated", ready, msg, ok)
	}
	if !equality.Semantic.DeepEqual(before.Object, u.Object) {
		t.Error("Workload modified the object it read")
	}
}
