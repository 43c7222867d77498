package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// GatewayType is Ingress or Egress.
// +kubebuilder:validation:Enum=Ingress;Egress
type GatewayType string

const (
	// GatewayIngress receives traffic from outside the mesh; its Service defaults to type LoadBalancer.
	GatewayIngress GatewayType = "Ingress"
	// GatewayEgress sends traffic out of the mesh; its Service defaults to type ClusterIP.
	GatewayEgress GatewayType = "Egress"
)

// Gateway is one Envoy gateway Deployment with its Service, rendered from Istio's gateway chart.
// +kubebuilder:validation:XValidation:rule="!(has(self.replicas) && has(self.autoscaling))",message="replicas and autoscaling of a gateway are mutually exclusive"
type Gateway struct {
	// Name of the gateway's Deployment, Service and ServiceAccount. Its pods are labelled istio=<name without the
	// "istio-" prefix>, which Istio Gateway objects select.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// Namespace of the gateway. Created if missing (and then kept when the gateway or the mesh is deleted); an
	// existing namespace is used as it is, except that one labelled istio-injection=disabled is refused, since
	// the gateway's pods must be injected.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace"`

	// Type is Ingress (default) or Egress.
	// +optional
	// +kubebuilder:default=Ingress
	Type GatewayType `json:"type,omitempty"`

	// Service of the gateway.
	// +optional
	Service *GatewayService `json:"service,omitempty"`

	// Replicas of the gateway when autoscaling is not used. Default 1 (without autoscaling).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	Replicas *int32 `json:"replicas,omitempty"`

	// Autoscaling of the gateway with a HorizontalPodAutoscaler. Meshwright then never sets the Deployment's
	// replicas, so scaling by the autoscaler causes no write.
	// +optional
	Autoscaling *Autoscaling `json:"autoscaling,omitempty"`

	// PodDisruptionBudget of the gateway (maxUnavailable 1). Enabled by default.
	// +optional
	PodDisruptionBudget *PodDisruptionBudget `json:"podDisruptionBudget,omitempty"`

	// Resources of the gateway's proxy container.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// NodeSelector of the gateway's pods.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// Tolerations of the gateway's pods.
	// +optional
	// +listType=atomic
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// Values are raw values of Istio's gateway chart, above the typed fields. Every key must exist in the chart's
	// defaults at its depth (or sit under a free-form map such as labels or annotations): a misspelt key is refused
	// with its path instead of being ignored.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	Values *apiextensionsv1.JSON `json:"values,omitempty"`
}

// GatewayService configures a gateway's Service.
type GatewayService struct {
	// Type of the Service. Default LoadBalancer for Ingress, ClusterIP for Egress.
	// +optional
	// +kubebuilder:validation:Enum=ClusterIP;NodePort;LoadBalancer
	Type corev1.ServiceType `json:"type,omitempty"`

	// Ports of the Service. Default: the chart's status-port 15021, http2 80 and https 443.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Ports []GatewayPort `json:"ports,omitempty"`

	// Annotations of the Service (cloud load-balancer settings).
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`

	// LoadBalancerSourceRanges restricts the client ranges of a LoadBalancer Service.
	// +optional
	// +listType=atomic
	LoadBalancerSourceRanges []string `json:"loadBalancerSourceRanges,omitempty"`

	// ExternalTrafficPolicy of the Service: Local keeps client source addresses.
	// +optional
	// +kubebuilder:validation:Enum=Cluster;Local
	ExternalTrafficPolicy corev1.ServiceExternalTrafficPolicy `json:"externalTrafficPolicy,omitempty"`
}

// GatewayPort is one port of a gateway's Service.
type GatewayPort struct {
	// Name of the port; its prefix (http, http2, https, grpc, tcp, tls) tells Istio the protocol.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// Port the Service exposes.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
	// TargetPort on the gateway's pods. Default: port.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	TargetPort int32 `json:"targetPort,omitempty"`
	// NodePort for NodePort and LoadBalancer Services.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	NodePort int32 `json:"nodePort,omitempty"`
	// Protocol of the port. Default TCP.
	// +optional
	// +kubebuilder:validation:Enum=TCP;UDP;SCTP
	Protocol corev1.Protocol `json:"protocol,omitempty"`
}

// GatewayAPI configures the Kubernetes Gateway API.
type GatewayAPI struct {
	// InstallCRDs installs the Gateway API's standard-channel CRDs that this build of Meshwright carries, unless
	// they already exist: CRDs installed by you or another controller (often the experimental channel) are never
	// updated. Meshwright's CRDs are kept when the mesh is deleted unless crdDeletionPolicy is Delete.
	// +optional
	InstallCRDs bool `json:"installCRDs,omitempty"`

	// GatewayClasses are per-class defaults for the Deployments istiod creates for Gateway objects (istiod's
	// gatewayClasses value), keyed by class name, e.g. {"istio": {"service": {"spec": {"type": "ClusterIP"}}}}.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	GatewayClasses *apiextensionsv1.JSON `json:"gatewayClasses,omitempty"`
}

// CNI configures the Istio CNI node agent.
// +kubebuilder:validation:XValidation:rule="has(self.namespace) == has(oldSelf.namespace)",message="spec.cni.namespace cannot change: every node would lose traffic redirection while the agent moves (ambient workloads lose traffic, new sidecar pods fail to start). Create the mesh with the namespace it needs"
type CNI struct {
	// Enabled runs the agent and tells the injector to leave out the init container. Implied by the ambient
	// profile, which refuses false.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`

	// Namespace of the agent's DaemonSet. Default kube-system, where the system-node-critical priority class is
	// allowed. Created if missing and kept afterwards.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.cni.namespace cannot change: every node would lose traffic redirection while the agent moves (ambient workloads lose traffic, new sidecar pods fail to start). Create the mesh with the namespace it needs"
	Namespace string `json:"namespace,omitempty"`

	// Values are raw values of Istio's istio-cni chart (the chart's keys, checked at every depth like a gateway's).
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	Values *apiextensionsv1.JSON `json:"values,omitempty"`
}

// GatewayStatus is the state of one gateway.
type GatewayStatus struct {
	// Name of the gateway.
	Name string `json:"name"`
	// Namespace of the gateway.
	Namespace string `json:"namespace"`
	// Revision of the control plane whose injector and istiod the gateway's proxies use.
	// +optional
	Revision string `json:"revision,omitempty"`
	// ReadyReplicas of the gateway's Deployment.
	ReadyReplicas int32 `json:"readyReplicas"`
	// Address of the Service once the cluster assigned one (a load balancer's IP or hostname, else the cluster IP).
	// +optional
	Address string `json:"address,omitempty"`
}
