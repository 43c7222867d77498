package render

import (
	"fmt"
	"net"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
)

// jaegerConfig is Jaeger v2's configuration (an OpenTelemetry Collector distribution): OTLP in, one storage
// backend, the query UI on 16686.
func jaegerConfig(badger bool) string {
	backend := "memory:\n          max_traces: 100000"
	if badger {
		backend = "badger:\n          directories:\n            keys: /badger/keys\n            values: /badger/values\n          ephemeral: false"
	}
	return `service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 0.0.0.0:13133
  jaeger_query:
    storage:
      traces: store
    http:
      endpoint: 0.0.0.0:16686
    grpc:
      endpoint: 0.0.0.0:16685
  jaeger_storage:
    backends:
      store:
        ` + backend + `
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
      http:
        endpoint: 0.0.0.0:4318
processors:
  batch: {}
exporters:
  jaeger_storage_exporter:
    trace_storage: store
`
}

func renderTracing(cfg Config) ([]*unstructured.Unstructured, error) {
	if AddonMode(cfg.Spec, ComponentTracing) != meshv1.AddonManaged {
		return nil, nil
	}
	image, err := addonImage(cfg, ComponentTracing, "jaeger")
	if err != nil {
		return nil, err
	}
	t := &meshv1.TracingAddon{}
	if cfg.Spec.Addons != nil && cfg.Spec.Addons.Tracing != nil {
		t = cfg.Spec.Addons.Tracing
	}
	badger := t.StorageType == "badger"
	data := map[string]string{"config.yaml": jaegerConfig(badger)}
	mounts := []corev1.VolumeMount{{Name: "config", MountPath: "/etc/jaeger"}, {Name: "tmp", MountPath: "/tmp"}}
	volumes := []corev1.Volume{
		{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "jaeger"}}}},
		{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	if badger {
		mounts = append(mounts, corev1.VolumeMount{Name: "data", MountPath: "/badger"})
		volumes = append(volumes, dataVolume("data", t.Storage, ComponentTracing+"-data"))
	}
	w := addonWorkload{name: ComponentTracing, namespace: cfg.Namespace, uid: 10001, config: data, recreate: badger && t.Storage != nil,
		container: corev1.Container{Name: "jaeger", Image: image, Args: []string{"--config=/etc/jaeger/config.yaml"},
			Ports: []corev1.ContainerPort{{Name: "grpc-otlp", ContainerPort: 4317}, {Name: "http-otlp", ContainerPort: 4318},
				{Name: "http-query", ContainerPort: 16686}, {Name: "grpc-query", ContainerPort: 16685}},
			VolumeMounts:   mounts,
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/status", Port: intstr.FromInt32(13133)}}},
		},
		volumes: volumes,
		services: []corev1.Service{
			{ObjectMeta: metav1.ObjectMeta{Name: CollectorService}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{port("grpc-otlp", 4317), port("http-otlp", 4318)}}},
			{ObjectMeta: metav1.ObjectMeta{Name: TracingService}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{port("http-query", 16686), port("grpc-query", 16685)}}},
		},
	}
	objs, err := w.objects(cfg)
	if err != nil {
		return nil, err
	}
	extra, err := toUnstructured(configMap("jaeger", cfg.Namespace, data))
	if err != nil {
		return nil, err
	}
	return append(objs, extra...), nil
}

// TracingEndpoint is the OTLP gRPC host and port Istio sends spans to ("" when tracing is Disabled).
func TracingEndpoint(spec meshv1.ServiceMeshSpec, namespace string) (host string, port int64) {
	switch AddonMode(spec, ComponentTracing) {
	case meshv1.AddonManaged:
		return fmt.Sprintf("%s.%s.svc.cluster.local", CollectorService, namespace), 4317
	case meshv1.AddonExternal:
		h, p, err := net.SplitHostPort(spec.Addons.Tracing.OTLPEndpoint)
		if err != nil {
			return "", 0
		}
		var n int64
		fmt.Sscan(p, &n)
		return h, n
	}
	return "", 0
}
