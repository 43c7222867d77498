package controllers

// Kubernetes lets a subject create a Role or ClusterRole only with permissions it holds itself. istiod's RBAC, as
// Istio's charts render it, is therefore part of what the operator needs, and no more: rbac_test.go fails when a
// rendered rule is not covered here, so this list follows the charts without granting escalate or bind.
//
// +kubebuilder:rbac:groups="",resources=endpoints;pods;nodes;replicationcontrollers,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups="",resources=services/status,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=apps,resources=replicasets,verbs=get;list;watch
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;create;update;patch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch
// +kubebuilder:rbac:groups=config.istio.io;security.istio.io;networking.istio.io;authentication.istio.io;rbac.istio.io;telemetry.istio.io;extensions.istio.io,resources=*,verbs=get;list;watch
// +kubebuilder:rbac:groups=networking.istio.io,resources=workloadentries;workloadentries/status;serviceentries/status,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=networking.istio.io,resources=gateways,verbs=create
// +kubebuilder:rbac:groups=security.istio.io,resources=authorizationpolicies/status,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=gateway.networking.k8s.io;gateway.networking.x-k8s.io;networking.x-k8s.io,resources=*,verbs=get;list;watch
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=gatewayclasses,verbs=create;update;patch;delete
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=backendtlspolicies/status;gatewayclasses/status;gateways/status;grpcroutes/status;httproutes/status;referencegrants/status;tcproutes/status;tlsroutes/status;udproutes/status;listenersets/status,verbs=update;patch
// +kubebuilder:rbac:groups=gateway.networking.x-k8s.io,resources=xbackendtrafficpolicies/status,verbs=update;patch
// +kubebuilder:rbac:groups=inference.networking.k8s.io,resources=inferencepools,verbs=get;list;watch
// +kubebuilder:rbac:groups=inference.networking.k8s.io,resources=inferencepools/status,verbs=update;patch
// +kubebuilder:rbac:groups=multicluster.x-k8s.io,resources=serviceexports,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=multicluster.x-k8s.io,resources=serviceimports,verbs=get;list;watch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses;ingressclasses,verbs=get;list;watch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses/status,verbs=*
