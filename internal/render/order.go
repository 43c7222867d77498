package render

import (
	"cmp"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Stage is the apply order of a kind: definitions before the objects they define, configuration before the workloads
// that read it, and webhooks last, so that no webhook points at a server that does not exist yet.
type Stage int

const (
	StageDefinitions Stage = iota // CRDs and Namespaces
	StageConfig                   // RBAC, ConfigMaps, Services, policies
	StageWorkloads                // Deployments, DaemonSets, autoscalers
	StageWebhooks                 // admission webhooks and policies
)

// StageOf returns the stage of an object.
func StageOf(o *unstructured.Unstructured) Stage {
	switch o.GetKind() {
	case "CustomResourceDefinition", "Namespace":
		return StageDefinitions
	case "Deployment", "DaemonSet", "StatefulSet", "HorizontalPodAutoscaler":
		return StageWorkloads
	case "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
		"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding":
		return StageWebhooks
	default:
		return StageConfig
	}
}

// Sort orders objects by stage, then group, kind, namespace and name, so renders are deterministic.
func Sort(objs []*unstructured.Unstructured) {
	slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int {
		return cmp.Or(
			cmp.Compare(StageOf(a), StageOf(b)),
			cmp.Compare(a.GroupVersionKind().Group, b.GroupVersionKind().Group),
			cmp.Compare(a.GetKind(), b.GetKind()),
			cmp.Compare(a.GetNamespace(), b.GetNamespace()),
			cmp.Compare(a.GetName(), b.GetName()),
		)
	})
}
