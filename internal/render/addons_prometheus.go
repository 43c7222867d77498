package render

import (
	"cmp"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/addons/prometheus"
)

func renderPrometheus(cfg Config) ([]*unstructured.Unstructured, error) {
	mode := AddonMode(cfg.Spec, ComponentPrometheus)
	if mode == meshv1.AddonExternal {
		return prometheusMonitors(cfg)
	}
	if mode != meshv1.AddonManaged {
		return nil, nil
	}
	image, err := addonImage(cfg, ComponentPrometheus, "prometheus")
	if err != nil {
		return nil, err
	}
	cniNamespace := ""
	if CNIEnabled(cfg.Spec) {
		cniNamespace = CNINamespace(cfg.Spec)
	}
	text, err := prometheus.Config(prometheus.Options{IstioNamespace: cfg.Namespace, CNINamespace: cniNamespace, Ztunnel: Ambient(cfg.Spec)})
	if err != nil {
		return nil, err
	}
	retention := "6h"
	var storage *meshv1.AddonStorage
	if p := cfg.Spec.Addons; p != nil && p.Prometheus != nil {
		retention = cmp.Or(p.Prometheus.Retention, retention)
		storage = p.Prometheus.Storage
	}
	data := map[string]string{"prometheus.yml": string(text)}
	w := addonWorkload{name: ComponentPrometheus, namespace: cfg.Namespace, uid: 65534, config: data, recreate: storage != nil,
		container: corev1.Container{Name: "prometheus", Image: image,
			Args: []string{"--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus",
				"--storage.tsdb.retention.time=" + retention, "--web.enable-lifecycle"},
			Ports:          []corev1.ContainerPort{{Name: "http-web", ContainerPort: 9090}},
			VolumeMounts:   []corev1.VolumeMount{{Name: "config", MountPath: "/etc/prometheus"}, {Name: "data", MountPath: "/prometheus"}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/-/ready", Port: intstr.FromInt32(9090)}}},
		},
		volumes: []corev1.Volume{
			{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "prometheus"}}}},
			dataVolume("data", storage, ComponentPrometheus+"-data"),
		},
		services: []corev1.Service{{ObjectMeta: metav1.ObjectMeta{Name: PrometheusService}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{port("http-web", 9090)}}}},
	}
	objs, err := w.objects(cfg)
	if err != nil {
		return nil, err
	}
	extra, err := toUnstructured(append([]runtime.Object{configMap("prometheus", cfg.Namespace, data)},
		clusterRole("meshwright-prometheus-"+cfg.Namespace, prometheus.ClusterRoleRules(), ComponentPrometheus, cfg.Namespace)...)...)
	if err != nil {
		return nil, err
	}
	return append(objs, extra...), nil
}

// prometheusMonitors renders, for an existing Prometheus Operator, a PodMonitor for the proxies' merged metrics and a
// ServiceMonitor for istiod.
func prometheusMonitors(cfg Config) ([]*unstructured.Unstructured, error) {
	p := cfg.Spec.Addons.Prometheus
	if p == nil || p.Monitors == nil || !p.Monitors.Enabled {
		return nil, nil
	}
	labels := map[string]any{}
	for k, v := range p.Monitors.Labels {
		labels[k] = v
	}
	podMonitor := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
		"metadata": map[string]any{"name": "istio-proxies", "namespace": cfg.Namespace, "labels": labels},
		"spec": map[string]any{
			"namespaceSelector":   map[string]any{"any": true},
			"selector":            map[string]any{"matchExpressions": []any{map[string]any{"key": "security.istio.io/tlsMode", "operator": "Exists"}}},
			"podMetricsEndpoints": []any{map[string]any{"path": "/stats/prometheus", "port": "http-envoy-prom", "interval": "15s"}},
		},
	}}
	serviceMonitor := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
		"metadata": map[string]any{"name": "istiod", "namespace": cfg.Namespace, "labels": labels},
		"spec": map[string]any{
			"selector":  map[string]any{"matchLabels": map[string]any{"app": "istiod"}},
			"endpoints": []any{map[string]any{"port": "http-monitoring", "interval": "15s"}},
		},
	}}
	return []*unstructured.Unstructured{podMonitor, serviceMonitor}, nil
}
