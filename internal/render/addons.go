package render

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/addons/grafana"
	"github.com/meshwright/meshwright/internal/addons/prometheus"
)

// Add-on components, rendered by Meshwright's own renderers (never Istio's samples).
const (
	ComponentPrometheus = "prometheus"
	ComponentGrafana    = "grafana"
	ComponentTracing    = "tracing"
	ComponentKiali      = "kiali"
)

// Names of the add-ons' Services and well-known objects.
const (
	PrometheusService = "prometheus"
	GrafanaService    = "grafana"
	// TracingService serves Jaeger's query UI and API; CollectorService its OTLP receivers.
	TracingService   = "tracing"
	CollectorService = "jaeger-collector"
	KialiService     = "kiali"
	// GrafanaAdminSecret and KialiSigningSecret are created once by the reconciler, never by the render.
	GrafanaAdminSecret = "grafana-admin"
	KialiSigningSecret = "kiali-signing-key"
	// TracingProvider is the name of the extension provider Meshwright adds to mesh config.
	TracingProvider = "meshwright-tracing"
	// AnnotationConfigHash on an add-on's pod template rolls the pod when its configuration changes.
	AnnotationConfigHash = "mesh.meshwright.dev/config-hash"
	// LabelKeep marks an add-on's PersistentVolumeClaim: it is created once and kept (see AddonStorage).
	LabelKeep = "mesh.meshwright.dev/keep"
)

// AddonMode resolves the mode of an add-on: unset means Disabled, except with the demo profile, which turns every
// add-on on (Managed).
func AddonMode(spec meshv1.ServiceMeshSpec, name string) meshv1.AddonMode {
	a := addonOf(spec, name)
	if a == nil {
		if spec.Profile == "demo" {
			return meshv1.AddonManaged
		}
		return meshv1.AddonDisabled
	}
	return cmp.Or(a.Mode, meshv1.AddonManaged)
}

func addonOf(spec meshv1.ServiceMeshSpec, name string) *meshv1.Addon {
	a := spec.Addons
	if a == nil {
		return nil
	}
	switch name {
	case ComponentPrometheus:
		if a.Prometheus != nil {
			return &a.Prometheus.Addon
		}
	case ComponentGrafana:
		if a.Grafana != nil {
			return &a.Grafana.Addon
		}
	case ComponentTracing:
		if a.Tracing != nil {
			return &a.Tracing.Addon
		}
	case ComponentKiali:
		if a.Kiali != nil {
			return &a.Kiali.Addon
		}
	}
	return nil
}

// AddonURL is where an add-on is reached from inside the cluster: its Service when Managed, the user's URL when
// External, "" when Disabled.
func AddonURL(spec meshv1.ServiceMeshSpec, namespace, name string) string {
	switch AddonMode(spec, name) {
	case meshv1.AddonExternal:
		return addonOf(spec, name).URL
	case meshv1.AddonManaged:
		port := map[string]int{ComponentPrometheus: 9090, ComponentGrafana: 3000, ComponentTracing: 16686, ComponentKiali: 20001}[name]
		service := map[string]string{ComponentPrometheus: PrometheusService, ComponentGrafana: GrafanaService,
			ComponentTracing: TracingService, ComponentKiali: KialiService}[name]
		return fmt.Sprintf("http://%s.%s:%d", service, namespace, port)
	}
	return ""
}

// addonImage is the add-on's image: the override, else the catalog's for the running version.
func addonImage(cfg Config, name, catalogKey string) (string, error) {
	if a := addonOf(cfg.Spec, name); a != nil && a.Image != "" {
		return a.Image, nil
	}
	rev := cfg.active()
	if img := rev.Version.Addons[catalogKey]; img != "" {
		return img, nil
	}
	return "", fmt.Errorf("spec.addons.%s: the catalog has no %s image for Istio %s; set spec.addons.%s.image", name, catalogKey, rev.Version.Version, name)
}

// restrictedPod makes a pod spec pass the Pod Security Standard "restricted".
func restrictedPod(spec *corev1.PodSpec, uid int64) {
	spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(uid), RunAsGroup: ptr.To(uid),
		FSGroup: ptr.To(uid), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
	spec.AutomountServiceAccountToken = ptr.To(true)
	for i := range spec.Containers {
		spec.Containers[i].SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem: ptr.To(true), RunAsNonRoot: ptr.To(true),
			Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
	}
}

// addonWorkload holds what every add-on renders: a ServiceAccount, a Deployment and its Services.
type addonWorkload struct {
	name, namespace string
	container       corev1.Container
	uid             int64
	volumes         []corev1.Volume
	services        []corev1.Service
	config          map[string]string // hashed into the pod template
	recreate        bool
}

func (w addonWorkload) objects(cfg Config) ([]*unstructured.Unstructured, error) {
	a := addonOf(cfg.Spec, w.name)
	labels := map[string]string{"app": w.name, "app.kubernetes.io/name": w.name, "app.kubernetes.io/part-of": "meshwright-addons"}
	c := w.container
	if a != nil && a.Resources != nil {
		c.Resources = *a.Resources
	} else if c.Resources.Requests == nil {
		c.Resources = corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}}
	}
	pod := corev1.PodSpec{ServiceAccountName: w.name, Containers: []corev1.Container{c}, Volumes: w.volumes}
	if a != nil && len(a.NodeSelector) > 0 {
		pod.NodeSelector = a.NodeSelector
	}
	restrictedPod(&pod, w.uid)
	annotations := map[string]string{"sidecar.istio.io/inject": "false"}
	if len(w.config) > 0 {
		annotations[AnnotationConfigHash] = hashConfig(w.config)
	}
	dep := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: w.name, Namespace: w.namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": w.name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: mergeLabels(labels, map[string]string{"sidecar.istio.io/inject": "false"}), Annotations: annotations},
				Spec:       pod,
			},
		},
	}
	if w.recreate {
		// A ReadWriteOnce volume cannot be mounted by the old and the new pod at once.
		dep.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	}
	objs := []runtime.Object{
		&corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			ObjectMeta: metav1.ObjectMeta{Name: w.name, Namespace: w.namespace, Labels: labels}},
		dep,
	}
	for i := range w.services {
		svc := w.services[i]
		svc.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}
		svc.Namespace = w.namespace
		svc.Labels = labels
		svc.Spec.Selector = map[string]string{"app": w.name}
		objs = append(objs, &svc)
	}
	return toUnstructured(objs...)
}

func mergeLabels(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func hashConfig(config map[string]string) string {
	h := sha256.New()
	keys := make([]string, 0, len(config))
	for k := range config {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "%s\x00%s\x00", k, config[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func toUnstructured(objs ...runtime.Object) ([]*unstructured.Unstructured, error) {
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{Object: raw}
		unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
		unstructured.RemoveNestedField(u.Object, "spec", "template", "metadata", "creationTimestamp")
		unstructured.RemoveNestedField(u.Object, "status")
		out = append(out, u)
	}
	return out, nil
}

func configMap(name, namespace string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{"app": strings.SplitN(name, "-", 2)[0]}},
		Data:       data}
}

func clusterRole(name string, rules []rbacv1.PolicyRule, sa, namespace string) []runtime.Object {
	return []runtime.Object{
		&rbacv1.ClusterRole{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
			ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules},
		&rbacv1.ClusterRoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: namespace}}},
	}
}

func port(name string, p int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: p, TargetPort: intstr.FromInt32(p), Protocol: corev1.ProtocolTCP}
}

func dataVolume(name string, storage *meshv1.AddonStorage, claim string) corev1.Volume {
	if storage == nil {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
	}
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}
}

// AddonClaim is the PersistentVolumeClaim an add-on's storage asks for; the reconciler creates it once and never
// updates it, and it carries no owner reference (its data outlives the add-on unless deleteWithMesh).
func AddonClaim(cfg Config, name string) *corev1.PersistentVolumeClaim {
	storage := addonStorage(cfg.Spec, name)
	if storage == nil || AddonMode(cfg.Spec, name) != meshv1.AddonManaged {
		return nil
	}
	pvc := &corev1.PersistentVolumeClaim{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: metav1.ObjectMeta{Name: name + "-data", Namespace: cfg.Namespace, Labels: map[string]string{
			LabelOwner: cfg.MeshName, LabelComponent: name, LabelManagedBy: ManagedBy, "app": name,
			LabelKeep: fmt.Sprint(!storage.DeleteWithMesh)}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: storage.Size}},
		},
	}
	if storage.StorageClassName != "" {
		pvc.Spec.StorageClassName = ptr.To(storage.StorageClassName)
	}
	return pvc
}

func addonStorage(spec meshv1.ServiceMeshSpec, name string) *meshv1.AddonStorage {
	if spec.Addons == nil {
		return nil
	}
	switch name {
	case ComponentPrometheus:
		if spec.Addons.Prometheus != nil {
			return spec.Addons.Prometheus.Storage
		}
	case ComponentTracing:
		if t := spec.Addons.Tracing; t != nil && t.StorageType == "badger" {
			return t.Storage
		}
	}
	return nil
}

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
