package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultNamespace is spec.namespace when left out.
const DefaultNamespace = "istio-system"

// DefaultSpec is the spec of a ServiceMesh created with an empty spec, after the API server applied the CRD's
// defaults (a test compares the two).
func DefaultSpec() ServiceMeshSpec { return ServiceMeshSpec{Namespace: DefaultNamespace} }

// ServiceMeshSpec is the desired Istio service mesh. Everything left empty is resolved by the operator at
// reconcile time (into status, never back into this spec), except namespace, which is defaulted at admission
// because it cannot change afterwards.
// +kubebuilder:validation:XValidation:rule="(has(self.updateStrategy) && has(self.updateStrategy.type) ? self.updateStrategy.type : 'InPlace') == (has(oldSelf.updateStrategy) && has(oldSelf.updateStrategy.type) ? oldSelf.updateStrategy.type : 'InPlace')",message="spec.updateStrategy.type cannot be changed after creation"
// +kubebuilder:validation:XValidation:rule="!has(self.injection) || !has(self.injection.revisionTags) || size(self.injection.revisionTags) == 0 || (has(self.updateStrategy) && has(self.updateStrategy.type) && self.updateStrategy.type == 'RevisionBased')",message="spec.injection.revisionTags requires spec.updateStrategy.type RevisionBased"
// +kubebuilder:validation:XValidation:rule="(has(self.security) && has(self.security.certificateAuthority) && has(self.security.certificateAuthority.type) ? self.security.certificateAuthority.type : 'Istiod') == (has(oldSelf.security) && has(oldSelf.security.certificateAuthority) && has(oldSelf.security.certificateAuthority.type) ? oldSelf.security.certificateAuthority.type : 'Istiod')",message="spec.security.certificateAuthority.type cannot be changed on an existing ServiceMesh: it replaces the root every workload trusts. Follow the migration in the README (Certificate authority: changing the CA type): delete and re-create the ServiceMesh with the new type, then restart the injected workloads"
// +kubebuilder:validation:XValidation:rule="!has(self.profile) || self.profile != 'ambient' || !has(self.cni) || !has(self.cni.enabled) || self.cni.enabled",message="spec.cni.enabled cannot be false with profile ambient: ambient mode needs the Istio CNI node agent"
type ServiceMeshSpec struct {
	// Version of Istio to run: an exact version from the operator's catalog ("1.31.0"), a minor alias that
	// follows the newest patch the operator embeds ("1.31"), or "latest". Empty or "latest": a new mesh gets the
	// newest version, and a running mesh keeps the minor it runs (following its newest patch) until this field
	// names another, so upgrading the operator never moves a mesh to another Istio minor.
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

	// Profile is the Istio configuration profile the values start from (Istio's own profiles). Empty means
	// "default". Meshwright decides the components itself, so "minimal" and "empty" render the same control plane
	// as "default". "ambient" runs the mesh without sidecars: istiod with ambient enabled, Istio CNI and ztunnel.
	// "remote" (no local istiod) is not supported yet.
	// +optional
	// +kubebuilder:validation:Enum=default;minimal;demo;empty;preview;stable;ambient
	Profile string `json:"profile,omitempty"`

	// Platform adapts the charts to a Kubernetes distribution (Istio's platform profiles: CNI binary and
	// configuration paths, security contexts). Empty for a standard cluster.
	// +optional
	// +kubebuilder:validation:Enum=gke;k3s;k3d;microk8s;minikube;openshift
	Platform string `json:"platform,omitempty"`

	// Gateways are the ingress, egress and custom gateways of the mesh, each rendered from Istio's gateway chart
	// once the injector of the active revision is ready. Removing one from the list removes it.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +listMapKey=namespace
	// +kubebuilder:validation:MaxItems=32
	Gateways []Gateway `json:"gateways,omitempty"`

	// GatewayAPI configures the Kubernetes Gateway API, which istiod serves (GatewayClass "istio").
	// +optional
	GatewayAPI *GatewayAPI `json:"gatewayAPI,omitempty"`

	// Addons are the observability add-ons: Prometheus, Grafana, tracing (Jaeger) and Kiali.
	// +optional
	Addons *Addons `json:"addons,omitempty"`

	// CNI runs the Istio CNI node agent (a DaemonSet), which sets up traffic redirection instead of the sidecars'
	// privileged init container. Always on with the ambient profile.
	// +optional
	CNI *CNI `json:"cni,omitempty"`

	// UpdateStrategy says how a version change is rolled out.
	// +optional
	UpdateStrategy *UpdateStrategy `json:"updateStrategy,omitempty"`

	// ControlPlane sizes and schedules istiod.
	// +optional
	ControlPlane *ControlPlane `json:"controlPlane,omitempty"`

	// Injection configures revision tags for sidecar injection.
	// +optional
	Injection *Injection `json:"injection,omitempty"`

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

	// Security configures the mesh's certificate authority, trust domain and mutual TLS.
	// +optional
	Security *Security `json:"security,omitempty"`

	// DeletionPolicy says what happens to Istio's CRDs when this ServiceMesh is deleted. "Retain" (the default)
	// keeps them, and with them every VirtualService, DestinationRule and other Istio object users created;
	// "Delete" removes the CRDs and therefore all those objects.
	// +optional
	// +kubebuilder:validation:Enum=Retain;Delete
	CRDDeletionPolicy CRDDeletionPolicy `json:"crdDeletionPolicy,omitempty"`
}

// Security configures identity and transport security of the mesh.
type Security struct {
	// TrustDomain of workload identities (SPIFFE IDs spiffe://<trustDomain>/ns/<ns>/sa/<sa>). Default cluster.local.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	TrustDomain string `json:"trustDomain,omitempty"`

	// MTLS is the mesh-wide mutual TLS mode, rendered as a PeerAuthentication named "default" in the mesh
	// namespace: STRICT (the default) accepts only mutual TLS, PERMISSIVE also plaintext, DISABLE turns it off.
	// Safe to change on a running mesh.
	// +optional
	// +kubebuilder:validation:Enum=STRICT;PERMISSIVE;DISABLE
	MTLS string `json:"mtls,omitempty"`

	// CertificateAuthority that signs workload certificates.
	// +optional
	CertificateAuthority *CertificateAuthority `json:"certificateAuthority,omitempty"`
}

// CertificateAuthorityType is Istiod or CertManager.
// +kubebuilder:validation:Enum=Istiod;CertManager
type CertificateAuthorityType string

const (
	// CAIstiod is istiod's own self-signed root.
	CAIstiod CertificateAuthorityType = "Istiod"
	// CACertManager is an intermediate CA issued by cert-manager and plugged into istiod.
	CACertManager CertificateAuthorityType = "CertManager"
)

// CertificateAuthority of the mesh.
// +kubebuilder:validation:XValidation:rule="!has(self.certManager) || self.type == 'CertManager'",message="spec.security.certificateAuthority.certManager requires type CertManager"
type CertificateAuthority struct {
	// Type is Istiod (default: istiod's self-signed root) or CertManager (cert-manager issues istiod's
	// intermediate CA, loaded by istiod as its plugged-in CA from the Secret "cacerts"). It cannot be changed once
	// the ServiceMesh exists (an unset type counts as Istiod): a new CA is a new root of trust, and workloads holding
	// certificates of the old one would stop trusting the new ones. The README documents the migration.
	// +optional
	Type CertificateAuthorityType `json:"type,omitempty"`

	// WorkloadCertTTL is the lifetime of workload certificates. Default 24h.
	// +optional
	WorkloadCertTTL *metav1.Duration `json:"workloadCertTTL,omitempty"`

	// CertManager configures the cert-manager CA.
	// +optional
	CertManager *CertManagerCA `json:"certManager,omitempty"`
}

// CertManagerCA configures the CA that cert-manager provides to istiod.
// +kubebuilder:validation:XValidation:rule="has(self.issuerRef) || (has(self.intermediateDuration) ? duration(self.intermediateDuration) : duration('8760h')) < (has(self.rootDuration) ? duration(self.rootDuration) : duration('87600h'))",message="spec.security.certificateAuthority.certManager.intermediateDuration must be shorter than rootDuration: the root is renewed when its remaining lifetime equals intermediateDuration, so that every intermediate is reissued under the renewed root before the old root expires"
// +kubebuilder:validation:XValidation:rule="!has(self.renewBefore) || !has(self.intermediateDuration) || duration(self.renewBefore) < duration(self.intermediateDuration)",message="spec.security.certificateAuthority.certManager.renewBefore must be shorter than intermediateDuration"
type CertManagerCA struct {
	// IssuerRef is your own Issuer or ClusterIssuer (any issuer kind) that signs istiod's intermediate CA. When
	// empty, Meshwright creates a self-signed root CA and a CA Issuer for it in the mesh namespace. Meshwright never
	// modifies or deletes your issuer.
	// +optional
	IssuerRef *IssuerReference `json:"issuerRef,omitempty"`

	// RootDuration is the lifetime of the self-signed root Meshwright creates. Default 87600h (10 years). The root
	// is renewed when intermediateDuration of its lifetime remains, with the same private key, so that certificates
	// issued under the old and the renewed root verify against either.
	// +optional
	RootDuration *metav1.Duration `json:"rootDuration,omitempty"`

	// IntermediateDuration is the lifetime of istiod's intermediate CA. Default 8760h (1 year).
	// +optional
	IntermediateDuration *metav1.Duration `json:"intermediateDuration,omitempty"`

	// RenewBefore is how long before expiry cert-manager renews istiod's intermediate CA. Default 720h (30 days).
	// +optional
	RenewBefore *metav1.Duration `json:"renewBefore,omitempty"`
}

// IssuerReference names a cert-manager issuer.
type IssuerReference struct {
	// Name of the issuer.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Kind of the issuer: Issuer (in the mesh namespace), ClusterIssuer, or an external issuer's kind. Default Issuer.
	// +optional
	Kind string `json:"kind,omitempty"`
	// Group of the issuer. Default cert-manager.io.
	// +optional
	Group string `json:"group,omitempty"`
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
	// before it is removed (RevisionBased). Default 30.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=2592000
	InactiveRevisionDeletionGracePeriodSeconds *int64 `json:"inactiveRevisionDeletionGracePeriodSeconds,omitempty"`

	// ReadinessTimeout is how long a new revision may take to become ready (RevisionBased). After it, the upgrade
	// is reported as failed (Ready=False, reason UpgradeFailed) and the revision tags stay on the old revision,
	// which keeps serving. It also bounds how long each workload restarted by workloadRollout may take to roll out;
	// after it, the rollout pauses (Stalled, reason WorkloadRolloutFailed) until that workload is rolled out.
	// Default 10m.
	// +optional
	ReadinessTimeout *metav1.Duration `json:"readinessTimeout,omitempty"`

	// WorkloadRollout restarts injected workloads onto the new revision once the tags moved (RevisionBased).
	// +optional
	WorkloadRollout *WorkloadRollout `json:"workloadRollout,omitempty"`
}

// WorkloadRollout restarts the Deployments, StatefulSets and DaemonSets whose pods run an old revision's proxy, a
// bounded number at a time, each waited for until it is rolled out before the next starts.
type WorkloadRollout struct {
	// Enabled turns the rollout on. Off by default: workloads then move when they next restart.
	Enabled bool `json:"enabled"`
	// MaxConcurrent is how many workloads restart at once. Default 1.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MaxConcurrent *int32 `json:"maxConcurrent,omitempty"`
}

// Injection configures sidecar injection beyond Istio's defaults.
type Injection struct {
	// RevisionTags are stable names namespaces can select with istio.io/rev=<tag>; like the implicit "default" tag
	// (which also serves istio-injection=enabled), they follow the active revision, so an upgrade moves the
	// namespaces that use them. RevisionBased only.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:items:MaxLength=30
	RevisionTags []string `json:"revisionTags,omitempty"`
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

	// WorkloadRollout reports the restart of injected workloads onto the active revision during an upgrade.
	// +optional
	WorkloadRollout *WorkloadRolloutStatus `json:"workloadRollout,omitempty"`

	// Components lists each rendered component and its state.
	// +optional
	// +listType=map
	// +listMapKey=name
	Components []ComponentStatus `json:"components,omitempty"`

	// Gateways reports each gateway of spec.gateways.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +listMapKey=namespace
	Gateways []GatewayStatus `json:"gateways,omitempty"`

	// Certificates are the CA certificates of a CertManager certificate authority, with their expiry.
	// +optional
	// +listType=map
	// +listMapKey=name
	Certificates []CertificateStatus `json:"certificates,omitempty"`

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
	// InUseNamespaces counts namespaces that select this revision, directly or through a tag.
	// +optional
	InUseNamespaces int32 `json:"inUseNamespaces,omitempty"`
	// CreatedAt is when Meshwright first rendered the revision.
	// +optional
	CreatedAt *metav1.Time `json:"createdAt,omitempty"`
	// InactiveSince is when the revision stopped being used; it is removed once the grace period has passed.
	// +optional
	InactiveSince *metav1.Time `json:"inactiveSince,omitempty"`
}

// WorkloadRolloutStatus reports the restart of injected workloads onto the active revision.
type WorkloadRolloutStatus struct {
	// Revision the workloads are moved to.
	Revision string `json:"revision"`
	// Pending counts workloads still running an old revision and not restarted yet.
	Pending int32 `json:"pending"`
	// InProgress lists the workloads restarting now ("<Kind>/<namespace>/<name>").
	// +optional
	// +listType=atomic
	InProgress []string `json:"inProgress,omitempty"`
	// Pinned lists restarted workloads whose pods still run an old revision (their namespace selects it by name).
	// +optional
	// +listType=atomic
	Pinned []string `json:"pinned,omitempty"`
	// Restarted counts the workloads restarted so far.
	Restarted int32 `json:"restarted"`
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

// CertificateStatus is the state of one CA certificate.
type CertificateStatus struct {
	// Name of the cert-manager Certificate.
	Name string `json:"name"`
	// Ready is cert-manager's Ready condition.
	Ready bool `json:"ready"`
	// NotAfter is when the certificate expires.
	// +optional
	NotAfter *metav1.Time `json:"notAfter,omitempty"`
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

	// Spec defaults to {} so that its own defaults (spec.namespace) apply to a ServiceMesh written without a spec
	// (`metadata: {name: default}` and nothing else); without it the API server would not default nested fields.
	// +optional
	// +kubebuilder:default={}
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
