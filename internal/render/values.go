package render

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
)

// Values computes the chart values of one chart in the documented precedence, lowest first:
//
//  1. catalog: image hub and tag of the resolved version
//  2. profile: the Istio profile's values (the chart's own files/profile-<name>.yaml)
//  3. typed spec fields: spec.controlPlane, spec.meshConfig
//  4. spec.values: the user's raw chart values
//  5. forced: what the operator must own (namespace, revision)
//
// Later layers override earlier ones key by key; lists and scalars are replaced whole.
func Values(cfg Config, rev Revision, profile map[string]any) (map[string]any, error) {
	layers := []map[string]any{catalogValues(cfg, rev), profile}
	typed, err := typedValues(cfg.Spec, cfg.Namespace)
	if err != nil {
		return nil, err
	}
	layers = append(layers, typed)
	if cfg.Spec.Values != nil && len(cfg.Spec.Values.Raw) > 0 {
		user := map[string]any{}
		if err := json.Unmarshal(cfg.Spec.Values.Raw, &user); err != nil {
			return nil, fmt.Errorf("spec.values: %w", err)
		}
		layers = append(layers, user)
	}
	layers = append(layers, forcedValues(cfg, rev))
	out := map[string]any{}
	for _, l := range layers {
		out = merge(out, l)
	}
	return out, nil
}

func catalogValues(cfg Config, rev Revision) map[string]any {
	return map[string]any{"global": map[string]any{"hub": cfg.Hub, "tag": rev.Version.Version}}
}

func typedValues(spec meshv1.ServiceMeshSpec, namespace string) (map[string]any, error) {
	pilot := map[string]any{}
	global := map[string]any{}
	out := map[string]any{}
	if cp := spec.ControlPlane; cp != nil {
		if cp.Replicas != nil {
			pilot["autoscaleEnabled"] = false
			pilot["replicaCount"] = int64(*cp.Replicas)
		}
		if as := cp.Autoscaling; as != nil {
			pilot["autoscaleEnabled"] = true
			pilot["autoscaleMin"] = int64(as.MinReplicas)
			pilot["autoscaleMax"] = int64(as.MaxReplicas)
			if as.TargetCPUUtilizationPercentage != nil {
				pilot["cpu"] = map[string]any{"targetAverageUtilization": int64(*as.TargetCPUUtilizationPercentage)}
			}
		}
		if cp.Resources != nil {
			r, err := toMap(cp.Resources)
			if err != nil {
				return nil, fmt.Errorf("spec.controlPlane.resources: %w", err)
			}
			pilot["resources"] = r
		}
		if len(cp.NodeSelector) > 0 {
			ns := map[string]any{}
			for k, v := range cp.NodeSelector {
				ns[k] = v
			}
			pilot["nodeSelector"] = ns
		}
		if len(cp.Tolerations) > 0 {
			var t []any
			raw, _ := json.Marshal(cp.Tolerations)
			if err := json.Unmarshal(raw, &t); err != nil {
				return nil, fmt.Errorf("spec.controlPlane.tolerations: %w", err)
			}
			pilot["tolerations"] = t
		}
		if cp.PodDisruptionBudget != nil {
			global["defaultPodDisruptionBudget"] = map[string]any{"enabled": cp.PodDisruptionBudget.Enabled}
		}
		if cp.LogLevel != "" {
			global["logging"] = map[string]any{"level": "default:" + cp.LogLevel}
		}
	}
	if CNIEnabled(spec) {
		// The CNI node agent redirects traffic: the injector leaves out the privileged init container.
		pilot["cni"] = map[string]any{"enabled": true}
	}
	if spec.Platform != "" {
		global["platform"] = spec.Platform
	}
	if gw := spec.GatewayAPI; gw != nil && gw.GatewayClasses != nil && len(gw.GatewayClasses.Raw) > 0 {
		classes := map[string]any{}
		if err := json.Unmarshal(gw.GatewayClasses.Raw, &classes); err != nil {
			return nil, fmt.Errorf("spec.gatewayAPI.gatewayClasses: %w", err)
		}
		out["gatewayClasses"] = classes
	}
	mc := map[string]any{}
	if sec := spec.Security; sec != nil {
		if sec.TrustDomain != "" {
			mc["trustDomain"] = sec.TrustDomain
		}
		if ca := sec.CertificateAuthority; ca != nil {
			if ca.WorkloadCertTTL != nil {
				ttl := ca.WorkloadCertTTL.Duration.String()
				mc["defaultConfig"] = map[string]any{"proxyMetadata": map[string]any{"SECRET_TTL": ttl}}
				pilot["env"] = map[string]any{"DEFAULT_WORKLOAD_CERT_TTL": ttl}
			}
			if ca.Type == meshv1.CACertManager {
				// Changing the CA restarts istiod: it reads a plugged-in CA only at start-up.
				pilot["podAnnotations"] = map[string]any{"mesh.meshwright.dev/ca": "cert-manager"}
			}
		}
	}
	if spec.MeshConfig != nil && len(spec.MeshConfig.Raw) > 0 {
		user := map[string]any{}
		if err := json.Unmarshal(spec.MeshConfig.Raw, &user); err != nil {
			return nil, fmt.Errorf("spec.meshConfig: %w", err)
		}
		mc = merge(mc, user)
	}
	mc = withTracing(mc, spec, namespace)
	if len(mc) > 0 {
		out["meshConfig"] = mc
	}
	if len(pilot) > 0 {
		out["pilot"] = pilot
	}
	if len(global) > 0 {
		out["global"] = global
	}
	return out, nil
}

func forcedValues(cfg Config, rev Revision) map[string]any {
	tags := make([]any, 0, len(rev.Tags))
	for _, t := range rev.Tags {
		tags = append(tags, t)
	}
	out := map[string]any{
		"revision":        rev.Name,
		"revisionTags":    tags,
		"defaultRevision": cmp.Or(cfg.DefaultRevision, "default"),
		"global":          map[string]any{"istioNamespace": cfg.Namespace},
	}
	if cfg.CARoot != "" {
		out["pilot"] = map[string]any{"podAnnotations": map[string]any{AnnotationCARoot: cfg.CARoot}}
	}
	return out
}

// merge returns base with overlay merged into it recursively; overlay wins. Neither input is modified.
func merge(base, overlay map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(overlay))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range overlay {
		if om, ok := v.(map[string]any); ok {
			if bm, ok := out[k].(map[string]any); ok {
				out[k] = merge(bm, om)
				continue
			}
			out[k] = merge(map[string]any{}, om)
			continue
		}
		out[k] = v
	}
	return out
}

func toMap(v any) (map[string]any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	return out, json.Unmarshal(raw, &out)
}

// withTracing wires Istio to the tracing add-on: an OpenTelemetry extension provider, merged by name into the
// user's providers (a provider of the user's with the same name wins; the list is never replaced), made the default
// tracing provider and given the sampling percentage, unless the user's mesh config already decides either.
func withTracing(mc map[string]any, spec meshv1.ServiceMeshSpec, namespace string) map[string]any {
	host, port := TracingEndpoint(spec, namespace)
	if host == "" {
		return mc
	}
	providers, _ := mc["extensionProviders"].([]any)
	mine := slices.ContainsFunc(providers, func(p any) bool {
		m, _ := p.(map[string]any)
		return m["name"] == TracingProvider
	})
	if !mine {
		providers = append(slices.Clone(providers), map[string]any{"name": TracingProvider,
			"opentelemetry": map[string]any{"service": host, "port": port}})
	}
	out := merge(mc, map[string]any{})
	out["extensionProviders"] = providers
	defaults, _ := out["defaultProviders"].(map[string]any)
	if _, set := defaults["tracing"]; !set {
		out = merge(out, map[string]any{"defaultProviders": map[string]any{"tracing": []any{TracingProvider}}})
	}
	sampling := 1.0
	if a := spec.Addons; a != nil && a.Tracing != nil && a.Tracing.SamplingPercentage != "" {
		t := a.Tracing
		if v, err := strconv.ParseFloat(t.SamplingPercentage, 64); err == nil {
			sampling = v
		}
	}
	if _, set, _ := unstructured.NestedFieldNoCopy(out, "defaultConfig", "tracing", "sampling"); !set {
		out = merge(out, map[string]any{"defaultConfig": map[string]any{"tracing": map[string]any{"sampling": sampling}}})
	}
	return out
}
