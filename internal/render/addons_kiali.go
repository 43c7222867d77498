package render

import (
	"cmp"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
)

// kialiRules are Kiali's read-only permissions (view-only mode); with viewOnly false it may also change Istio's
// configuration objects.
func kialiRules(viewOnly bool) []rbacv1.PolicyRule {
	read := []string{"get", "list", "watch"}
	rules := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps", "endpoints", "namespaces", "nodes", "pods", "pods/log", "replicationcontrollers", "services"}, Verbs: read},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments", "replicasets", "statefulsets", "daemonsets"}, Verbs: read},
		{APIGroups: []string{"batch"}, Resources: []string{"cronjobs", "jobs"}, Verbs: read},
		{APIGroups: []string{"autoscaling"}, Resources: []string{"horizontalpodautoscalers"}, Verbs: read},
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: read},
		{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations"}, Verbs: read},
		{APIGroups: []string{"networking.istio.io", "security.istio.io", "telemetry.istio.io", "extensions.istio.io", "gateway.networking.k8s.io"},
			Resources: []string{"*"}, Verbs: read},
		{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
		{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"selfsubjectaccessreviews"}, Verbs: []string{"create"}},
	}
	if !viewOnly {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{"networking.istio.io", "security.istio.io", "telemetry.istio.io"},
			Resources: []string{"*"}, Verbs: []string{"create", "update", "patch", "delete"}})
	}
	return rules
}

func renderKiali(cfg Config) ([]*unstructured.Unstructured, error) {
	if AddonMode(cfg.Spec, ComponentKiali) != meshv1.AddonManaged {
		return nil, nil
	}
	image, err := addonImage(cfg, ComponentKiali, "kiali")
	if err != nil {
		return nil, err
	}
	k := &meshv1.KialiAddon{}
	if cfg.Spec.Addons != nil && cfg.Spec.Addons.Kiali != nil {
		k = cfg.Spec.Addons.Kiali
	}
	viewOnly := k.ViewOnly == nil || *k.ViewOnly
	rev := cfg.active()
	suffix := ""
	if rev.Name != "" {
		suffix = "-" + rev.Name
	}
	tracingURL := AddonURL(cfg.Spec, cfg.Namespace, ComponentTracing)
	config := map[string]any{
		"istio_namespace": cfg.Namespace,
		"auth":            map[string]any{"strategy": cmp.Or(k.Auth, "anonymous")},
		"deployment": map[string]any{"view_only_mode": viewOnly, "cluster_wide_access": true,
			"namespace": cfg.Namespace},
		"server":              map[string]any{"port": 20001, "web_root": "/kiali", "observability": map[string]any{"metrics": map[string]any{"enabled": true, "port": 9090}}},
		"kiali_feature_flags": map[string]any{"disabled_features": []any{}},
		"external_services": map[string]any{
			"istio": map[string]any{
				"config_map_name":                        "istio" + suffix,
				"istio_sidecar_injector_config_map_name": "istio-sidecar-injector" + suffix,
				"istiod_deployment_name":                 "istiod" + suffix,
				"url_service_version":                    fmt.Sprintf("http://istiod%s.%s:15014/version", suffix, cfg.Namespace),
			},
			"prometheus": map[string]any{"url": AddonURL(cfg.Spec, cfg.Namespace, ComponentPrometheus)},
			"grafana": map[string]any{"enabled": AddonMode(cfg.Spec, ComponentGrafana) != meshv1.AddonDisabled,
				"internal_url": AddonURL(cfg.Spec, cfg.Namespace, ComponentGrafana)},
			"tracing": map[string]any{"enabled": tracingURL != "", "provider": "jaeger", "use_grpc": false,
				"internal_url": tracingURL},
		},
	}
	text, err := yaml.Marshal(config)
	if err != nil {
		return nil, err
	}
	data := map[string]string{"config.yaml": string(text)}
	w := addonWorkload{name: ComponentKiali, namespace: cfg.Namespace, uid: 1000, config: data,
		container: corev1.Container{Name: "kiali", Image: image, Command: []string{"/opt/kiali/kiali", "-config", "/kiali-configuration/config.yaml"},
			Env: []corev1.EnvVar{
				{Name: "ACTIVE_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
				{Name: "LOGIN_TOKEN_SIGNING_KEY", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: KialiSigningSecret}, Key: "key"}}},
			},
			Ports:          []corev1.ContainerPort{{Name: "http-kiali", ContainerPort: 20001}, {Name: "http-metrics", ContainerPort: 9090}},
			VolumeMounts:   []corev1.VolumeMount{{Name: "config", MountPath: "/kiali-configuration"}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/kiali/healthz", Port: intstr.FromInt32(20001)}}},
		},
		volumes: []corev1.Volume{
			{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "kiali"}}}},
		},
		services: []corev1.Service{{ObjectMeta: metav1.ObjectMeta{Name: KialiService},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{port("http-kiali", 20001), port("http-metrics", 9090)}}}},
	}
	objs, err := w.objects(cfg)
	if err != nil {
		return nil, err
	}
	extra, err := toUnstructured(append([]runtime.Object{configMap("kiali", cfg.Namespace, data)},
		clusterRole("meshwright-kiali-"+cfg.Namespace, kialiRules(viewOnly), ComponentKiali, cfg.Namespace)...)...)
	if err != nil {
		return nil, err
	}
	return append(objs, extra...), nil
}
