package v1alpha1

// Condition types. Ready is the summary; Reconciling and Stalled follow kstatus and are present only while true.
const (
	ConditionReady             = "Ready"
	ConditionReconciling       = "Reconciling"
	ConditionStalled           = "Stalled"
	ConditionControlPlaneReady = "ControlPlaneReady"
	ConditionCertificatesReady = "CertificatesReady"
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
// Only profiles implemented end to end (each renders istiod and becomes Ready) are accepted; "remote" (no istiod)
// and "ambient" (no Istio CNI, no ztunnel) are refused at admission until Meshwright renders what they need. The
// enum alone refuses them: a CEL rule with a friendlier message would never run, since the API server skips CEL rules
// once the schema rejected a value.
var Profiles = []string{"default", "minimal", "demo", "empty", "preview", "stable"}
