package render

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/gatewayapi"
	"github.com/meshwright/meshwright/internal/istio"
)

// Component is one row of the mesh: a name (the value of LabelComponent on everything it renders) and a pure
// renderer. Which rows must be ready before another is applied, and how each is assessed, is the reconciler's
// table; this one only says what each renders.
type Component struct {
	Name   string
	Render func(Config) ([]*unstructured.Unstructured, error)
}

// Components are the rows in render order. A disabled component renders nothing.
var Components = []Component{
	{ComponentBase, renderBase},
	{ComponentIstiod, renderIstiod},
	{ComponentMeshPolicy, renderMeshPolicy},
	{ComponentCertificates, renderCertificates},
	{ComponentGatewayAPI, renderGatewayAPI},
	{ComponentGateway, renderGateways},
	{ComponentCNI, renderCNI},
	{ComponentZtunnel, renderZtunnel},
	{ComponentPrometheus, renderPrometheus},
	{ComponentGrafana, renderGrafana},
	{ComponentTracing, renderTracing},
	{ComponentKiali, renderKiali},
}

// LabelGateway names the gateway (of spec.gateways) an object belongs to; the object's namespace is the gateway's.
const LabelGateway = "mesh.meshwright.dev/gateway"

// Chart names of the data-plane components, relative to the manifests' charts/ directory.
const (
	chartGateway = "gateway"
	chartCNI     = "istio-cni"
	chartZtunnel = "ztunnel"
)

// Ambient reports whether the mesh runs in ambient mode.
func Ambient(spec meshv1.ServiceMeshSpec) bool { return spec.Profile == meshv1.ProfileAmbient }

// CNIEnabled reports whether the Istio CNI node agent runs: asked for, or implied by ambient.
func CNIEnabled(spec meshv1.ServiceMeshSpec) bool {
	if spec.CNI != nil && spec.CNI.Enabled != nil {
		return *spec.CNI.Enabled
	}
	return Ambient(spec)
}

// CNINamespace is the namespace of the CNI node agent.
func CNINamespace(spec meshv1.ServiceMeshSpec) string {
	if spec.CNI != nil && spec.CNI.Namespace != "" {
		return spec.CNI.Namespace
	}
	return "kube-system"
}

// active is the revision the data plane follows: the one the revision tags point at (the only one for InPlace).
// Gateways are injected by it, and CNI and ztunnel run its version.
func (c Config) active() Revision {
	revs := c.revisions()
	for _, r := range revs {
		if r.Name == c.DefaultRevision {
			return r
		}
	}
	return revs[0]
}

func renderMeshPolicy(cfg Config) ([]*unstructured.Unstructured, error) {
	objs, err := securityObjects(cfg)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(objs, func(o *unstructured.Unstructured) bool {
		return o.GetLabels()[LabelComponent] != ComponentMeshPolicy
	}), nil
}

func renderCertificates(cfg Config) ([]*unstructured.Unstructured, error) {
	objs, err := securityObjects(cfg)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(objs, func(o *unstructured.Unstructured) bool {
		return o.GetLabels()[LabelComponent] != ComponentCertificates
	}), nil
}

// renderGatewayAPI renders the Gateway API's standard-channel CRDs this build carries, when asked for.
func renderGatewayAPI(cfg Config) ([]*unstructured.Unstructured, error) {
	if cfg.Spec.GatewayAPI == nil || !cfg.Spec.GatewayAPI.InstallCRDs {
		return nil, nil
	}
	return gatewayapi.CRDs()
}

// renderGateways renders each gateway of spec.gateways from Istio's gateway chart of the active revision's version,
// pinned to that revision, with the namespace it runs in.
func renderGateways(cfg Config) ([]*unstructured.Unstructured, error) {
	if len(cfg.Spec.Gateways) == 0 {
		return nil, nil
	}
	rev := cfg.active()
	chrt, err := istio.LoadChart(rev.Version, chartGateway)
	if err != nil {
		return nil, err
	}
	var objs []*unstructured.Unstructured
	for i, gw := range cfg.Spec.Gateways {
		values, err := gatewayValues(cfg, rev, chrt, i, gw)
		if err != nil {
			return nil, err
		}
		out, err := renderWithValues(cfg, chrt, values, gw.Name, gw.Namespace)
		if err != nil {
			return nil, fmt.Errorf("spec.gateways[%d] (%s/%s): %w", i, gw.Namespace, gw.Name, err)
		}
		if gw.Namespace != cfg.Namespace {
			out = append([]*unstructured.Unstructured{namespace(gw.Namespace)}, out...)
		}
		for _, o := range out {
			label(o, cfg.MeshName, ComponentGateway)
			if o.GetKind() != "Namespace" {
				l := o.GetLabels()
				l[LabelGateway] = gw.Name
				o.SetLabels(l)
			}
		}
		objs = append(objs, out...)
	}
	return objs, nil
}

func gatewayValues(cfg Config, rev Revision, chrt *chart.Chart, i int, gw meshv1.Gateway) (map[string]any, error) {
	profile, err := chartProfile(chrt, cfg.Spec.Profile)
	if err != nil {
		return nil, err
	}
	typed := map[string]any{
		// Never lose a ready replica while the pods move to a new template (a new revision's injection).
		"strategy": map[string]any{"type": "RollingUpdate", "rollingUpdate": map[string]any{"maxSurge": int64(1), "maxUnavailable": int64(0)}},
	}
	svc := map[string]any{}
	if gw.Type == meshv1.GatewayEgress {
		svc["type"] = "ClusterIP"
	}
	if s := gw.Service; s != nil {
		if s.Type != "" {
			svc["type"] = string(s.Type)
		}
		if len(s.Ports) > 0 {
			ports := make([]any, 0, len(s.Ports))
			for _, p := range s.Ports {
				port := map[string]any{"name": p.Name, "port": int64(p.Port), "protocol": string(p.Protocol),
					"targetPort": int64(p.Port)}
				if p.Protocol == "" {
					port["protocol"] = "TCP"
				}
				if p.TargetPort != 0 {
					port["targetPort"] = int64(p.TargetPort)
				}
				if p.NodePort != 0 {
					port["nodePort"] = int64(p.NodePort)
				}
				ports = append(ports, port)
			}
			svc["ports"] = ports
		}
		if len(s.Annotations) > 0 {
			svc["annotations"] = stringMap(s.Annotations)
		}
		if len(s.LoadBalancerSourceRanges) > 0 {
			svc["loadBalancerSourceRanges"] = stringList(s.LoadBalancerSourceRanges)
		}
		if s.ExternalTrafficPolicy != "" {
			svc["externalTrafficPolicy"] = string(s.ExternalTrafficPolicy)
		}
	}
	if len(svc) > 0 {
		typed["service"] = svc
	}
	switch {
	case gw.Autoscaling != nil:
		as := map[string]any{"enabled": true, "minReplicas": int64(gw.Autoscaling.MinReplicas), "maxReplicas": int64(gw.Autoscaling.MaxReplicas)}
		if gw.Autoscaling.TargetCPUUtilizationPercentage != nil {
			as["targetCPUUtilizationPercentage"] = int64(*gw.Autoscaling.TargetCPUUtilizationPercentage)
		}
		typed["autoscaling"] = as
	case gw.Replicas != nil:
		typed["autoscaling"] = map[string]any{"enabled": false}
		typed["replicaCount"] = int64(*gw.Replicas)
	}
	if gw.PodDisruptionBudget == nil || gw.PodDisruptionBudget.Enabled {
		typed["podDisruptionBudget"] = map[string]any{"maxUnavailable": int64(1)}
	}
	if gw.Resources != nil {
		r, err := toMap(gw.Resources)
		if err != nil {
			return nil, fmt.Errorf("spec.gateways[%d].resources: %w", i, err)
		}
		typed["resources"] = r
	}
	if len(gw.NodeSelector) > 0 {
		typed["nodeSelector"] = stringMap(gw.NodeSelector)
	}
	if len(gw.Tolerations) > 0 {
		var t []any
		raw, _ := json.Marshal(gw.Tolerations)
		if err := json.Unmarshal(raw, &t); err != nil {
			return nil, fmt.Errorf("spec.gateways[%d].tolerations: %w", i, err)
		}
		typed["tolerations"] = t
	}
	user, err := checkedValues(chrt, rev.Version, gw.Values, fmt.Sprintf("spec.gateways[%d].values", i))
	if err != nil {
		return nil, err
	}
	forced := map[string]any{
		"name":     gw.Name,
		"revision": rev.Name,
		"global":   map[string]any{"istioNamespace": cfg.Namespace},
	}
	out := map[string]any{}
	for _, l := range []map[string]any{catalogValues(cfg, rev), platformValues(cfg.Spec), profile, typed, user, forced} {
		out = merge(out, l)
	}
	return out, nil
}

// renderCNI renders Istio's CNI node agent (istio-cni chart) of the active revision's version.
func renderCNI(cfg Config) ([]*unstructured.Unstructured, error) {
	if !CNIEnabled(cfg.Spec) {
		return nil, nil
	}
	rev := cfg.active()
	chrt, err := istio.LoadChart(rev.Version, chartCNI)
	if err != nil {
		return nil, err
	}
	profile, err := chartProfile(chrt, cfg.Spec.Profile)
	if err != nil {
		return nil, err
	}
	var raw *apiextensionsv1.JSON
	if cfg.Spec.CNI != nil {
		raw = cfg.Spec.CNI.Values
	}
	user, err := checkedValues(chrt, rev.Version, raw, "spec.cni.values")
	if err != nil {
		return nil, err
	}
	// Istio's profiles set the agent's values under "cni", the key of the chart's former layout, which this chart
	// reads at the top level.
	if legacy, err := istio.ProfileValues(chrt, cfg.Spec.Profile); err == nil {
		if c, ok := legacy["cni"].(map[string]any); ok {
			profile = merge(profile, c)
		}
	}
	ns := CNINamespace(cfg.Spec)
	typed := map[string]any{
		// A node keeps its agent until the new one replaced it: one node at a time, never a surge (the agent binds
		// host ports on the node's network).
		"updateStrategy": map[string]any{"type": "RollingUpdate", "rollingUpdate": map[string]any{"maxUnavailable": int64(1)}},
	}
	forced := map[string]any{"global": map[string]any{"istioNamespace": cfg.Namespace}}
	values := map[string]any{}
	for _, l := range []map[string]any{imageValues(cfg, rev), platformValues(cfg.Spec), profile, typed, user, forced} {
		values = merge(values, l)
	}
	out, err := renderWithValues(cfg, chrt, values, "istio-cni", ns)
	if err != nil {
		return nil, err
	}
	if ns != cfg.Namespace && ns != "kube-system" {
		out = append([]*unstructured.Unstructured{namespace(ns)}, out...)
	}
	return out, nil
}

// renderZtunnel renders ztunnel (ambient only) from the chart of the active revision's version, with the same
// revision, mesh configuration, trust domain and global values as that revision's istiod, so the two never drift
// apart.
func renderZtunnel(cfg Config) ([]*unstructured.Unstructured, error) {
	if !Ambient(cfg.Spec) {
		return nil, nil
	}
	rev := cfg.active()
	chrt, err := istio.LoadChart(rev.Version, chartZtunnel)
	if err != nil {
		return nil, err
	}
	profile, err := chartProfile(chrt, cfg.Spec.Profile)
	if err != nil {
		return nil, err
	}
	istiod, err := Values(cfg, rev, map[string]any{})
	if err != nil {
		return nil, err
	}
	shared := map[string]any{}
	for _, k := range []string{"global", "meshConfig"} {
		if v, ok := istiod[k]; ok {
			shared[k] = v
		}
	}
	forced := map[string]any{
		"revision":       rev.Name,
		"istioNamespace": cfg.Namespace,
		"global":         map[string]any{"istioNamespace": cfg.Namespace},
	}
	values := map[string]any{}
	for _, l := range []map[string]any{imageValues(cfg, rev), platformValues(cfg.Spec), profile, shared, forced} {
		values = merge(values, l)
	}
	return renderWithValues(cfg, chrt, values, "ztunnel", cfg.Namespace)
}

// chartProfile returns the values of an Istio profile that concern a chart: Istio's profile files are shared by all
// charts, and the gateway chart's schema refuses the keys of the others (cni, meshConfig).
func chartProfile(chrt *chart.Chart, profile string) (map[string]any, error) {
	all, err := istio.ProfileValues(chrt, profile)
	if err != nil {
		return nil, err
	}
	defaults := ChartDefaults(chrt)
	return maps.Collect(func(yield func(string, any) bool) {
		for k, v := range all {
			if _, ok := defaults[k]; (ok || k == "global") && !yield(k, v) {
				return
			}
		}
	}), nil
}

// imageValues sets the image hub and tag both where the CNI and ztunnel charts read them and globally.
func imageValues(cfg Config, rev Revision) map[string]any {
	return merge(catalogValues(cfg, rev), map[string]any{"hub": cfg.Hub, "tag": rev.Version.Version})
}

func platformValues(spec meshv1.ServiceMeshSpec) map[string]any {
	if spec.Platform == "" {
		return map[string]any{}
	}
	return map[string]any{"global": map[string]any{"platform": spec.Platform}}
}

// checkedValues parses raw chart values and checks every key at every depth against the chart's defaults.
func checkedValues(chrt *chart.Chart, v istio.Version, raw *apiextensionsv1.JSON, path string) (map[string]any, error) {
	user := map[string]any{}
	if raw == nil || len(raw.Raw) == 0 || string(raw.Raw) == "null" {
		return user, nil
	}
	if err := json.Unmarshal(raw.Raw, &user); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := CheckKeys(ChartDefaults(chrt), user, path); err != nil {
		var unknown *UnknownValueError
		if errors.As(err, &unknown) {
			unknown.Chart, unknown.Version = chrt.Name(), v.Version
		}
		return nil, err
	}
	return user, nil
}

// UnknownValueError is a chart value the chart does not have: a misspelt key would otherwise be ignored silently.
type UnknownValueError struct {
	// Path of the key in the ServiceMesh, e.g. spec.gateways[0].values.service.typ.
	Path           string
	Chart, Version string
}

func (e *UnknownValueError) Error() string {
	return fmt.Sprintf("%s is not a value of Istio %s's %s chart (check its spelling and depth)", e.Path, e.Version, e.Chart)
}

// ChartDefaults is the tree of a chart's default values (Istio's charts keep them under _internal_defaults_do_not_set).
func ChartDefaults(chrt *chart.Chart) map[string]any {
	if d, ok := chrt.Values["_internal_defaults_do_not_set"].(map[string]any); ok {
		return d
	}
	return chrt.Values
}

// topLevelExtras are values every Istio chart reads although its defaults do not list them. global is shared by all
// of Istio's charts, each reading only some of it, so its keys are not checked against one chart's.
var topLevelExtras = []string{"global", "profile", "platform", "compatibilityVersion"}

// CheckKeys returns an UnknownValueError for the first key of user, in sorted order at every depth, that defaults do
// not have. A key whose default is an empty map, null or a scalar holding a map is free-form (labels, annotations,
// env): anything below it is accepted. Lists are not looked into.
func CheckKeys(defaults, user map[string]any, path string) error {
	return checkKeys(defaults, user, path, true)
}

func checkKeys(defaults, user map[string]any, path string, top bool) error {
	for _, k := range slices.Sorted(maps.Keys(user)) {
		d, ok := defaults[k]
		if !ok {
			if top && slices.Contains(topLevelExtras, k) {
				continue
			}
			return &UnknownValueError{Path: path + "." + k}
		}
		dm, dIsMap := d.(map[string]any)
		um, uIsMap := user[k].(map[string]any)
		if dIsMap && len(dm) > 0 && uIsMap && !freeForm(k) && !(top && k == "global") {
			if err := checkKeys(dm, um, path+"."+k, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// freeFormSuffixes end the names of values that are Kubernetes maps of any keys (labels, annotations, resources,
// security contexts), although their defaults list a few.
var freeFormSuffixes = []string{"annotations", "labels", "selector", "env", "resources", "limits", "requests",
	"securitycontext", "affinity"}

func freeForm(key string) bool {
	key = strings.ToLower(key)
	return slices.ContainsFunc(freeFormSuffixes, func(s string) bool { return strings.HasSuffix(key, s) })
}

func stringMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func stringList(l []string) []any {
	out := make([]any, 0, len(l))
	for _, v := range l {
		out = append(out, v)
	}
	return out
}
