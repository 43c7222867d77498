package render

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
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
