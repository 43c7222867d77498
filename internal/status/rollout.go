package status

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// DeploymentRolledOut reports whether a Deployment finished rolling out its current spec: the controller observed the
// latest generation, every replica runs the new template and is available, no old replica is left, and the
// Deployment is Available. The message explains what is still pending, for users.
func DeploymentRolledOut(d *appsv1.Deployment) (bool, string) {
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
