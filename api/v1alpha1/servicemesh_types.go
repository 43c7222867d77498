package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ServiceMeshSpec is the desired Istio service mesh. Everything left empty is resolved by the operator at
// reconcile time (into status, never back into this spec), except namespace, which is defaulted at admission
// because it cannot change afterwards.
type ServiceMeshSpec struct {
	// Version of Istio to run: an exact version from the operator's catalog ("1.31.0"), a minor alias that
	// follows the newest patch the operator embeds ("1.31"), or "latest". Empty means "latest".
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^(latest|[0-9]+\.[0-9]+(\.[0-9]+)?)$`
	Version string `json:"version,omitempty"`

	// Namespace the control plane is installed into. Cannot be changed after creation: moving a control plane
	// would break every workload connected to it.
	// +optional
	// +kubebuilder:default=istio-system
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.namespace is immutable; create a new ServiceMesh to move the control plane"
	Namespace string `json:"namespace,omitempty"`

	// Profile is the Istio configuration profile the values start from (Istio's own profiles).
	// Empty means "default".
	// +optional
	// +kubebuilder:validation:Enum=default;minimal;demo;empty;preview;remote;stable;ambient
	Profile string `json:"profile,omitempty"`

	// UpdateStrategy says how a version change is rolled out.
	// +optional
	UpdateStrategy *UpdateStrategy `json:"updateStrategy,omitempty"`

	// ControlPlane sizes and schedules istiod.
	// +optional
	ControlPlane *ControlPlane `json:"controlPlane,omitempty"`

	// MeshConfig is passed through to Istio's MeshConfig (the `meshConfig` chart value), above the profile and
	// below spec.values. See Istio's MeshConfig reference for the fields.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	MeshConfig *apiextensionsv1.JSON `json:"meshConfig,omitempty"`

	// Values are raw Istio chart values, the escape hatch for settings without a typed field. They override the
	// profile and the typed fields; the operator still forces the values it must own (namespace, revision, images'
	// ownership labels).
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	Values *apiextensionsv1.JSON `json:"values,omitempty"`

	// DeletionPolicy says what happens to Istio's CRDs when this ServiceMesh is deleted. "Retain" (the default)
	// keeps them, and with them every VirtualService, DestinationRule and other Istio object users created;
	// "Delete" removes the CRDs and therefore all those objects.
	// +optional
	// +kubebuilder:validation:Enum=Retain;Delete
	CRDDeletionPolicy CRDDeletionPolicy `json:"crdDeletionPolicy,omitempty"`
}

// CRDDeletionPolicy is Retain or Delete.
type CRDDeletionPolicy string

const (
	CRDDeletionPolicyRetain CRDDeletionPolicy = "Retain"
	CRDDeletionPolicyDelete CRDDeletionPolicy = "Delete"
)

// UpdateStrategyType is InPlace or RevisionBased.
// +kubebuilder:validation:Enum=InPlace;RevisionBased
type UpdateStrategyType string

const (
	// UpdateStrategyInPlace runs one control plane and upgrades it in place.
	UpdateStrategyInPlace UpdateStrategyType = "InPlace"
	// UpdateStrategyRevisionBased runs each version as its own revision beside the previous one.
	UpdateStrategyRevisionBased UpdateStrategyType = "RevisionBased"
)

// UpdateStrategy says how version changes are rolled out.
type UpdateStrategy struct {
	// Type is InPlace (default) or RevisionBased.
	// +optional
	Type UpdateStrategyType `json:"type,omitempty"`

	// InactiveRevisionDeletionGracePeriodSeconds is how long a revision that no workload uses any more is kept
	// before it is removed. Default 30.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=2592000
	InactiveRevisionDeletionGracePeriodSeconds *int64 `json:"inactiveRevisionDeletionGracePeriodSeconds,omitempty"`
}

// ControlPlane sizes and schedules istiod.
// +kubebuilder:validation:XValidation:rule="!(has(self.replicas) && has(self.autoscaling))",message="spec.controlPlane.replicas and spec.controlPlane.autoscaling are mutually exclusive"
type ControlPlane struct {
	// Replicas of istiod when autoscaling is not used. Default 1.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Replicas *int32 `json:"replicas,omitempty"`

	// Autoscaling of istiod with a HorizontalPodAutoscaler.
	// +optional
	Autoscaling *Autoscaling `json:"autoscaling,omitempty"`

	// Resources of the istiod container.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// PodDisruptionBudget of istiod. Enabled by default.
	// +optional
	PodDisruptionBudget *PodDisruptionBudget `json:"podDisruptionBudget,omitempty"`

	// NodeSelector of istiod pods.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// Tolerations of istiod pods.
	// +optional
	// +listType=atomic
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// LogLevel of istiod's default scope.
	// +optional
	// +kubebuilder:validation:Enum=debug;info;warn;error;none
	LogLevel string `json:"logLevel,omitempty"`
}

// Autoscaling bounds for istiod.
// +kubebuilder:validation:XValidation:rule="self.minReplicas <= self.maxReplicas",message="spec.controlPlane.autoscaling.minReplicas must not exceed maxReplicas"
type Autoscaling struct {
	// MinReplicas of istiod.
	// +kubebuilder:validation:Minimum=1
	MinReplicas int32 `json:"minReplicas"`
	// MaxReplicas of istiod.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MaxReplicas int32 `json:"maxReplicas"`
	// TargetCPUUtilizationPercentage at which istiod scales out. Default 80.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	TargetCPUUtilizationPercentage *int32 `json:"targetCPUUtilizationPercentage,omitempty"`
}

// PodDisruptionBudget of istiod.
type PodDisruptionBudget struct {
	// Enabled renders a PodDisruptionBudget with maxUnavailable 1.
	Enabled bool `json:"enabled"`
}

// ServiceMeshStatus is what the operator observed. It follows kstatus: Ready is always present once reconciled,
// Reconciling and Stalled only while true, and observedGeneration is the generation last fully reconciled.
type ServiceMeshStatus struct {
	// ObservedGeneration is the metadata.generation last fully reconciled; 0 until the first reconcile. Always
	// serialised, so that kstatus sees 0 rather than no field.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration"`

	// Conditions: Ready (summary), Reconciling, Stalled, and one per component (ControlPlaneReady, ...).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`

	// Version is the exact Istio version spec.version resolved to.
	// +optional
	Version string `json:"version,omitempty"`

	// ActiveRevision is the revision new workloads are injected by.
	// +optional
	ActiveRevision string `json:"activeRevision,omitempty"`

	// Revisions are the control-plane revisions that exist.
	// +optional
	// +listType=map
	// +listMapKey=name
	Revisions []RevisionStatus `json:"revisions,omitempty"`

	// Components lists each rendered component and its state.
	// +optional
	// +listType=map
	// +listMapKey=name
	Components []ComponentStatus `json:"components,omitempty"`

	// Inventory lists the objects the operator applied, so the ones a new render no longer contains are pruned.
	// +optional
	Inventory *Inventory `json:"inventory,omitempty"`
}

// RevisionStatus describes one control-plane revision.
type RevisionStatus struct {
	// Name of the revision ("default" for InPlace).
	Name string `json:"name"`
	// Version of Istio the revision runs.
	Version string `json:"version"`
	// Ready is true when the revision's istiod is rolled out and available.
	Ready bool `json:"ready"`
	// InUsePods counts pods injected by this revision.
	// +optional
	InUsePods int32 `json:"inUsePods,omitempty"`
	// InUseNamespaces counts namespaces that select this revision.
	// +optional
	InUseNamespaces int32 `json:"inUseNamespaces,omitempty"`
}

// ComponentState is the state of one component.
// +kubebuilder:validation:Enum=Ready;Progressing;Failed;Disabled
type ComponentState string

const (
	ComponentReady       ComponentState = "Ready"
	ComponentProgressing ComponentState = "Progressing"
	ComponentFailed      ComponentState = "Failed"
	ComponentDisabled    ComponentState = "Disabled"
)

// ComponentStatus describes one rendered component (base, istiod, ...).
type ComponentStatus struct {
	// Name of the component.
	Name string `json:"name"`
	// State of the component.
	State ComponentState `json:"state"`
	// Message explains the state for users.
	// +optional
	Message string `json:"message,omitempty"`
}

// Inventory is the set of objects applied by the operator.
type Inventory struct {
	// Entries are object IDs in the form "<namespace>_<name>_<group>_<kind>", sorted.
	// +optional
	// +listType=atomic
	Entries []string `json:"entries,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=sm;mesh,categories=meshwright
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.status.version`
// +kubebuilder:printcolumn:name="Revision",type=string,JSONPath=`.status.activeRevision`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 40",message="metadata.name must be at most 40 characters so that revision names derived from it stay valid"

// ServiceMesh is one Istio service mesh: its control plane and everything around it.
type ServiceMesh struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec ServiceMeshSpec `json:"spec,omitempty"`
	// Status defaults to observedGeneration 0, so that kstatus reports a ServiceMesh the operator has not yet
	// reconciled as InProgress instead of Current (kstatus treats an object without conditions as Current).
	// +optional
	// +kubebuilder:default={observedGeneration: 0}
	Status ServiceMeshStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ServiceMeshList is a list of ServiceMesh.
type ServiceMeshList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ServiceMesh `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ServiceMesh{}, &ServiceMeshList{})
}
