package v1alpha1

// Condition types. Ready is the summary; Reconciling and Stalled follow kstatus and are present only while true.
const (
	ConditionReady             = "Ready"
	ConditionReconciling       = "Reconciling"
	ConditionStalled           = "Stalled"
	ConditionControlPlaneReady = "ControlPlaneReady"
	ConditionCertificatesReady = "CertificatesReady"
	// ConditionGatewaysReady is present while spec.gateways is not empty; it never waits for a load balancer's address.
	ConditionGatewaysReady = "GatewaysReady"
	// ConditionCNIReady is present while the Istio CNI node agent is on.
	ConditionCNIReady = "CNIReady"
	// ConditionZtunnelReady is present with the ambient profile.
	ConditionZtunnelReady = "ZtunnelReady"
	// ConditionWaypointsAvailable is present with the ambient profile: False while the Gateway API CRDs that
	// waypoints (L7) need are missing.
	ConditionWaypointsAvailable = "WaypointsAvailable"
	// ConditionAddonsReady is present while an add-on is Managed; it never holds Ready.
	ConditionAddonsReady = "AddonsReady"
	// ConditionPaused is True while the ServiceMesh carries AnnotationPaused.
	ConditionPaused = "Paused"
	// ConditionVersionSupported is present, False, only while the mesh runs a version past its end of life.
	ConditionVersionSupported = "VersionSupported"
)

// Condition reasons, CamelCase, stable for alerting and scripts.
const (
	ReasonNotImplemented      = "NotImplemented"
	ReasonReconciling         = "Reconciling"
	ReasonProgressing         = "Progressing"
	ReasonReady               = "Ready"
	ReasonUnsupportedVersion  = "UnsupportedVersion"
	ReasonInvalidSpec         = "InvalidSpec"
	ReasonApplyFailed         = "ApplyFailed"
	ReasonDeleting            = "Deleting"
	ReasonConflict            = "Conflict"
	ReasonCertManagerMissing  = "CertManagerNotInstalled"
	ReasonCertificatesIssuing = "CertificatesIssuing"
	ReasonUpgradeFailed       = "UpgradeFailed"
	ReasonUpgrading           = "Upgrading"
	ReasonPaused              = "Paused"
	// ReasonWorkloadRolloutFailed: a workload restarted onto the new revision did not roll out in time, or the
	// rollout could not read or restart workloads.
	ReasonWorkloadRolloutFailed = "WorkloadRolloutFailed"
	// ReasonReconcileError is the fallback for a failure no phase explained; the message is the error.
	ReasonReconcileError = "ReconcileError"
	ReasonEndOfLife      = "EndOfLife"
	// ReasonWaiting: a component waits for the components it depends on to become ready.
	ReasonWaiting = "WaitingForDependencies"
	// ReasonGatewayAPIMissing: the Gateway API CRDs are not installed.
	ReasonGatewayAPIMissing = "GatewayAPICRDsMissing"
)

// Annotations users set.
const (
	// AnnotationPaused, set to "true" on a ServiceMesh, stops every write to the mesh's objects (apply, prune, tag
	// moves, workload restarts, deletion) until it is removed; drift is left alone meanwhile.
	AnnotationPaused = "mesh.meshwright.dev/paused"
	// AnnotationAdopt, set on a live object to the name of a ServiceMesh, lets that mesh take the object over
	// (label, apply, and later prune or delete it) although Meshwright did not create it.
	AnnotationAdopt = "mesh.meshwright.dev/adopt"
)

// Finalizer guards the cleanup of everything the operator created for a ServiceMesh.
const Finalizer = "mesh.meshwright.dev/finalizer"

// Profiles are the values spec.profile accepts; they must equal the enum marker on ServiceMeshSpec.Profile (a test
// compares them), so code that covers every profile (RBAC, watches) iterates this list.
// Only profiles implemented end to end are accepted; "remote" (no local istiod) is refused at admission until
// Meshwright renders what it needs. The enum alone refuses it: a CEL rule with a friendlier message would never run,
// since the API server skips CEL rules once the schema rejected a value.
var Profiles = []string{"default", "minimal", "demo", "empty", "preview", "stable", "ambient"}

// ProfileAmbient runs the mesh without sidecars (Istio CNI and ztunnel).
const ProfileAmbient = "ambient"
