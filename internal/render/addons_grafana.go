package render

import (
	"cmp"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/addons/grafana"
)

func renderGrafana(cfg Config) ([]*unstructured.Unstructured, error) {
	if AddonMode(cfg.Spec, ComponentGrafana) != meshv1.AddonManaged {
		return nil, nil
	}
	image, err := addonImage(cfg, ComponentGrafana, "grafana")
	if err != nil {
		return nil, err
	}
	dashboards, err := grafana.Dashboards(grafana.Options{Ambient: Ambient(cfg.Spec), DatasourceUID: "prometheus"})
	if err != nil {
		return nil, err
	}
	datasource := map[string]any{"apiVersion": 1, "datasources": []any{map[string]any{
		"name": "Prometheus", "uid": "prometheus", "type": "prometheus", "access": "proxy", "isDefault": true, "editable": false,
		"url": cmp.Or(AddonURL(cfg.Spec, cfg.Namespace, ComponentPrometheus), "http://prometheus-not-configured:9090"),
	}}}
	provider := map[string]any{"apiVersion": 1, "providers": []any{map[string]any{
		"name": "meshwright", "folder": "Istio (Meshwright)", "type": "file", "disableDeletion": true, "editable": false,
		"options": map[string]any{"path": "/var/lib/grafana/dashboards/meshwright"},
	}}}
	ds, _ := yaml.Marshal(datasource)
	pv, _ := yaml.Marshal(provider)
	provisioning := map[string]string{"datasources.yaml": string(ds), "dashboards.yaml": string(pv)}
	boards := map[string]string{}
	for name, data := range dashboards {
		boards[name] = string(data)
	}
	anonymous := true
	if g := cfg.Spec.Addons; g != nil && g.Grafana != nil && g.Grafana.Anonymous != nil {
		anonymous = *g.Grafana.Anonymous
	}
	secretEnv := func(name, key string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: GrafanaAdminSecret}, Key: key}}}
	}
	w := addonWorkload{name: ComponentGrafana, namespace: cfg.Namespace, uid: 472,
		config: mergeLabels(provisioning, boards),
		container: corev1.Container{Name: "grafana", Image: image,
			Env: []corev1.EnvVar{
				{Name: "GF_PATHS_DATA", Value: "/var/lib/grafana"},
				{Name: "GF_PATHS_PROVISIONING", Value: "/etc/grafana/provisioning"},
				{Name: "GF_AUTH_ANONYMOUS_ENABLED", Value: fmt.Sprint(anonymous)},
				{Name: "GF_AUTH_ANONYMOUS_ORG_ROLE", Value: "Viewer"},
				{Name: "GF_AUTH_BASIC_ENABLED", Value: "true"},
				{Name: "GF_ANALYTICS_REPORTING_ENABLED", Value: "false"},
				{Name: "GF_ANALYTICS_CHECK_FOR_UPDATES", Value: "false"},
				secretEnv("GF_SECURITY_ADMIN_USER", "username"),
				secretEnv("GF_SECURITY_ADMIN_PASSWORD", "password"),
			},
			Ports: []corev1.ContainerPort{{Name: "http-grafana", ContainerPort: 3000}},
			VolumeMounts: []corev1.VolumeMount{
				{Name: "data", MountPath: "/var/lib/grafana"},
				{Name: "tmp", MountPath: "/tmp"},
				{Name: "provisioning", MountPath: "/etc/grafana/provisioning/datasources/datasources.yaml", SubPath: "datasources.yaml"},
				{Name: "provisioning", MountPath: "/etc/grafana/provisioning/dashboards/dashboards.yaml", SubPath: "dashboards.yaml"},
				{Name: "dashboards", MountPath: "/var/lib/grafana/dashboards/meshwright"},
			},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/api/health", Port: intstr.FromInt32(3000)}}},
		},
		volumes: []corev1.Volume{
			{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "provisioning", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "grafana-provisioning"}}}},
			{Name: "dashboards", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "grafana-dashboards"}}}},
		},
		services: []corev1.Service{{ObjectMeta: metav1.ObjectMeta{Name: GrafanaService}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{port("http-grafana", 3000)}}}},
	}
	objs, err := w.objects(cfg)
	if err != nil {
		return nil, err
	}
	extra, err := toUnstructured(configMap("grafana-provisioning", cfg.Namespace, provisioning), configMap("grafana-dashboards", cfg.Namespace, boards))
	if err != nil {
		return nil, err
	}
	return append(objs, extra...), nil
}
