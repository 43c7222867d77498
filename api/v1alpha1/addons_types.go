package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// AddonMode says who runs an add-on.
// +kubebuilder:validation:Enum=Managed;External;Disabled
type AddonMode string

const (
	// AddonManaged: Meshwright runs the add-on in the mesh namespace.
	AddonManaged AddonMode = "Managed"
	// AddonExternal: an installation of yours, at url, is used instead.
	AddonExternal AddonMode = "External"
	// AddonDisabled: no add-on, nothing wired to it.
	AddonDisabled AddonMode = "Disabled"
)

// Addons are the mesh's observability add-ons. Each is Disabled unless set (the demo profile turns all four on,
// Managed). They are applied after the control plane and never hold Ready: one that is not ready shows in
// AddonsReady, in Ready's message and in an event.
type Addons struct {
	// Prometheus scrapes istiod, the proxies (Istio's merged metrics), the CNI agent and ztunnel.
	// +optional
	Prometheus *PrometheusAddon `json:"prometheus,omitempty"`
	// Grafana with a Prometheus datasource and Meshwright's dashboards.
	// +optional
	Grafana *GrafanaAddon `json:"grafana,omitempty"`
	// Tracing is Jaeger (v2, all in one), wired into Istio as an OpenTelemetry tracing provider.
	// +optional
	Tracing *TracingAddon `json:"tracing,omitempty"`
	// Kiali, the mesh console, configured with the other add-ons' URLs.
	// +optional
	Kiali *KialiAddon `json:"kiali,omitempty"`
}

// Addon is what every add-on has.
// +kubebuilder:validation:XValidation:rule="self.mode != 'External' || has(self.url)",message="url is required when mode is External"
// +kubebuilder:validation:XValidation:rule="!has(self.url) || isURL(self.url)",message="url must be an absolute URL such as http://prometheus.monitoring:9090"
type Addon struct {
	// Mode is Managed (Meshwright runs it), External (use yours at url) or Disabled.
	// +kubebuilder:default=Managed
	Mode AddonMode `json:"mode,omitempty"`
	// URL of your installation (External): used by the add-ons that read it (Grafana's datasource, Kiali).
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	URL string `json:"url,omitempty"`
	// Image overrides the catalog's image of the add-on.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image,omitempty"`
	// Resources of the add-on's container.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
	// NodeSelector of the add-on's pod.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
}

// PrometheusAddon configures Prometheus.
type PrometheusAddon struct {
	Addon `json:",inline"`
	// Retention of samples, e.g. 15d or 12h. Default 6h.
	// +optional
	// +kubebuilder:validation:Pattern=`^[0-9]+(ms|s|m|h|d|w|y)$`
	// +kubebuilder:validation:MaxLength=16
	Retention string `json:"retention,omitempty"`
	// Storage of the samples: emptyDir unless a size is given.
	// +optional
	Storage *AddonStorage `json:"storage,omitempty"`
	// Monitors renders a PodMonitor and a ServiceMonitor for an existing Prometheus Operator instead (mode
	// External; needs the Prometheus Operator's CRDs).
	// +optional
	Monitors *PrometheusMonitors `json:"monitors,omitempty"`
}

// PrometheusMonitors are Prometheus Operator monitors for the mesh.
type PrometheusMonitors struct {
	// Enabled renders them.
	Enabled bool `json:"enabled"`
	// Labels on the monitors, so your Prometheus selects them (kube-prometheus-stack selects on release=<its release>).
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
}

// AddonStorage is a PersistentVolumeClaim for an add-on's data. It carries no owner reference and is kept when the
// add-on is disabled or the mesh deleted, unless deleteWithMesh is set.
// +kubebuilder:validation:XValidation:rule="self.size == oldSelf.size",message="the storage size cannot change: the PersistentVolumeClaim keeps its data; delete it yourself to start again"
type AddonStorage struct {
	// Size of the volume.
	Size resource.Quantity `json:"size"`
	// StorageClassName of the volume; the cluster's default when empty.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	StorageClassName string `json:"storageClassName,omitempty"`
	// DeleteWithMesh deletes the volume when the add-on is disabled or the mesh deleted. Off by default: data is kept.
	// +optional
	DeleteWithMesh bool `json:"deleteWithMesh,omitempty"`
}

// GrafanaAddon configures Grafana.
type GrafanaAddon struct {
	Addon `json:",inline"`
	// Anonymous read-only access (Viewer). Default true; the admin credentials are in the Secret grafana-admin.
	// +optional
	Anonymous *bool `json:"anonymous,omitempty"`
}

// TracingAddon configures Jaeger and how Istio traces.
// +kubebuilder:validation:XValidation:rule="self.mode != 'External' || has(self.otlpEndpoint)",message="otlpEndpoint is required when mode is External: Istio sends spans there"
type TracingAddon struct {
	Addon `json:",inline"`
	// OTLPEndpoint is the host:port of your OpenTelemetry collector's OTLP gRPC receiver (External).
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9.-]+:[0-9]{1,5}$`
	OTLPEndpoint string `json:"otlpEndpoint,omitempty"`
	// SamplingPercentage of requests traced, 0 to 100 (a decimal string such as "1" or "0.5"). Default "1".
	// +optional
	// +kubebuilder:validation:Pattern=`^(100(\.0+)?|[0-9]{1,2}(\.[0-9]+)?)$`
	// +kubebuilder:validation:MaxLength=12
	SamplingPercentage string `json:"samplingPercentage,omitempty"`
	// Storage is memory (default, lost on restart) or badger (on the volume of storage.size, or emptyDir).
	// +optional
	// +kubebuilder:validation:Enum=memory;badger
	StorageType string `json:"storageType,omitempty"`
	// Storage for badger.
	// +optional
	Storage *AddonStorage `json:"storage,omitempty"`
}

// KialiAddon configures Kiali.
type KialiAddon struct {
	Addon `json:",inline"`
	// Auth is anonymous (default) or token (a Kubernetes token is required to log in).
	// +optional
	// +kubebuilder:validation:Enum=anonymous;token
	Auth string `json:"auth,omitempty"`
	// ViewOnly keeps Kiali read-only (default true): its RBAC lets it read, never change, the mesh's objects.
	// +optional
	ViewOnly *bool `json:"viewOnly,omitempty"`
}
