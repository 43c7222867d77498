package v1alpha1

// Condition types. Ready is the summary; Reconciling and Stalled follow kstatus and are present only while true.
const (
	ConditionReady             = "Ready"
	ConditionReconciling       = "Reconciling"
	ConditionStalled           = "Stalled"
	ConditionControlPlaneReady = "ControlPlaneReady"
	ConditionCertificatesReady = "CertificatesReady"
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
	// ReasonWorkloadRolloutFailed: a workload restarted onto the new revision did not roll out in time, or the
	// rollout could not read or restart workloads.
	ReasonWorkloadRolloutFailed = "WorkloadRolloutFailed"
	// ReasonReconcileError is the fallback for a failure no phase explained; the message is the error.
	ReasonReconcileError = "ReconcileError"
	ReasonEndOfLife      = "EndOfLife"
)

// Finalizer guards the cleanup of everything the operator created for a ServiceMesh.
const Finalizer = "mesh.meshwright.dev/finalizer"

// Profiles are the values spec.profile accepts; they must equal the enum marker on ServiceMeshSpec.Profile (a test
// compares them), so code that covers every profile (RBAC, watches) iterates this list.
var Profiles = []string{"default", "minimal", "demo", "empty", "preview", "remote", "stable", "ambient"}
