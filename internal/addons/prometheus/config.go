// Package prometheus owns what the Prometheus add-on scrapes and what it may read: the prometheus.yml text for a
// mesh (istiod of every revision, Envoy sidecars and gateways through Istio's merged metrics, the CNI agent, ztunnel
// and Prometheus itself) and the read-only RBAC rules its ServiceAccount needs for Kubernetes service discovery.
// It is pure: no Kubernetes client, no clock, and the same Options always give the same bytes. It must not render
// the Deployment, Service or ConfigMap around the configuration; those belong to the add-on's renderer.
package prometheus

import (
	"bytes"
	"fmt"
	"regexp"
	"time"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Job names, the value of the `job` label on every series a job scrapes.
const (
	JobPrometheus = "prometheus"
	JobIstiod     = "istiod"
	JobPods       = "kubernetes-pods"
	JobCNI        = "istio-cni"
	JobZtunnel    = "ztunnel"
)

// DefaultScrapeInterval is used when Options.ScrapeInterval is zero.
const DefaultScrapeInterval = 15 * time.Second

// What Istio's charts name and label, checked against the charts of every supported minor by the tests.
const (
	// istiodServicePattern matches the Service of the default revision (istiod) and of every other (istiod-<rev>).
	istiodServicePattern = `istiod(-.+)?`
	istiodPortName       = "http-monitoring"
	istiodAppLabel       = "istiod"

	cniPodLabelValue = "istio-cni-node" // the pods' k8s-app label
	cniPortName      = "metrics"

	ztunnelAppLabel    = "ztunnel"
	ztunnelPortName    = "ztunnel-stats"
	ztunnelMetricsPath = "/stats/prometheus"

	// prometheusSelf is Prometheus's own listener, scraped over the loopback interface.
	prometheusSelf = "localhost:9090"
)

// Options says which parts of the mesh run, and so which jobs the configuration holds.
type Options struct {
	// IstioNamespace holds istiod of every revision, and ztunnel when it runs. Required.
	IstioNamespace string
	// CNINamespace holds the istio-cni-node DaemonSet; empty when the mesh runs no CNI agent.
	CNINamespace string
	// Ztunnel is true in ambient mode.
	Ztunnel bool
	// ScrapeInterval is the global scrape and rule-evaluation interval; zero means DefaultScrapeInterval.
	ScrapeInterval time.Duration
}

// Config returns the prometheus.yml text for opts. Targets are found by Kubernetes service discovery in the
// cluster Prometheus runs in, authenticated by its pod's ServiceAccount (see ClusterRoleRules).
func Config(opts Options) ([]byte, error) {
	interval, err := validate(opts)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	err = enc.Encode(configFile{
		Global:        globalConfig{ScrapeInterval: interval, EvaluationInterval: interval},
		ScrapeConfigs: scrapeConfigs(opts),
	})
	if err == nil {
		err = enc.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("encoding the Prometheus configuration: %w", err)
	}
	return out.Bytes(), nil
}

// validate checks opts and returns the scrape interval in Prometheus's duration syntax.
func validate(opts Options) (string, error) {
	if errs := validation.IsDNS1123Label(opts.IstioNamespace); len(errs) > 0 {
		return "", fmt.Errorf("Istio namespace %q: %v", opts.IstioNamespace, errs)
	}
	if opts.CNINamespace != "" {
		if errs := validation.IsDNS1123Label(opts.CNINamespace); len(errs) > 0 {
			return "", fmt.Errorf("CNI namespace %q: %v", opts.CNINamespace, errs)
		}
	}
	interval := opts.ScrapeInterval
	if interval == 0 {
		interval = DefaultScrapeInterval
	}
	return promDuration(interval)
}

// promDuration writes d in Prometheus's duration syntax, which has no fractions (time.Duration's "1.5s" is refused).
func promDuration(d time.Duration) (string, error) {
	switch {
	case d <= 0:
		return "", fmt.Errorf("scrape interval %s: must be positive", d)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second), nil
	case d%time.Millisecond == 0:
		return fmt.Sprintf("%dms", d/time.Millisecond), nil
	default:
		return "", fmt.Errorf("scrape interval %s: must be a whole number of milliseconds", d)
	}
}

// scrapeConfigs lists the jobs in a fixed order, the optional ones only when their component runs.
func scrapeConfigs(opts Options) []scrapeConfig {
	jobs := []scrapeConfig{prometheusJob(), istiodJob(opts), podsJob(opts)}
	if opts.CNINamespace != "" {
		jobs = append(jobs, cniJob(opts))
	}
	if opts.Ztunnel {
		jobs = append(jobs, ztunnelJob(opts))
	}
	return jobs
}

func prometheusJob() scrapeConfig {
	return scrapeConfig{
		JobName:       JobPrometheus,
		StaticConfigs: []staticConfig{{Targets: []string{prometheusSelf}}},
	}
}

// istiodJob scrapes istiod through the endpoints of its Services rather than its pods, so that only the monitoring
// port is scraped and every revision's Service (istiod, istiod-<rev>) is found without knowing the revisions.
func istiodJob(opts Options) scrapeConfig {
	return scrapeConfig{
		JobName:             JobIstiod,
		KubernetesSDConfigs: []kubernetesSDConfig{inNamespace("endpointslice", opts.IstioNamespace)},
		RelabelConfigs: append([]relabelConfig{
			keep(istiodServicePattern+";"+istiodPortName,
				"__meta_kubernetes_service_name", "__meta_kubernetes_endpointslice_port_name"),
			copyLabel("__meta_kubernetes_pod_label_istio_io_rev", "revision"),
		}, targetLabels()...),
	}
}

// podsJob scrapes every running pod that asks for it with the prometheus.io annotations. Istio's injector points
// those annotations of sidecars and gateways at the agent's merged endpoint (15020, /stats/prometheus), which serves
// Envoy's and the application's metrics together. Pods that a dedicated job scrapes are dropped here so that no
// series is collected twice under two job names: istiod and the CNI agent annotate their pods too.
func podsJob(opts Options) scrapeConfig {
	rules := []relabelConfig{
		keep("true", "__meta_kubernetes_pod_annotation_prometheus_io_scrape"),
		keep("Running", "__meta_kubernetes_pod_phase"),
		drop(regexp.QuoteMeta(opts.IstioNamespace)+";"+istiodAppLabel,
			"__meta_kubernetes_namespace", "__meta_kubernetes_pod_label_app"),
	}
	if opts.CNINamespace != "" {
		rules = append(rules, drop(regexp.QuoteMeta(opts.CNINamespace)+";"+cniPodLabelValue,
			"__meta_kubernetes_namespace", "__meta_kubernetes_pod_label_k8s_app"))
	}
	rules = append(rules,
		relabelConfig{
			SourceLabels: []string{"__meta_kubernetes_pod_annotation_prometheus_io_path"},
			Regex:        "(.+)",
			TargetLabel:  "__metrics_path__",
			Action:       "replace",
		},
		// The annotated port replaces whichever container port discovery produced the target for; an IPv6 pod IP
		// needs brackets in host:port.
		relabelConfig{
			SourceLabels: []string{"__meta_kubernetes_pod_annotation_prometheus_io_port", "__meta_kubernetes_pod_ip"},
			Regex:        `(\d+);([^:]+)`,
			TargetLabel:  "__address__",
			Replacement:  "$2:$1",
			Action:       "replace",
		},
		relabelConfig{
			SourceLabels: []string{"__meta_kubernetes_pod_annotation_prometheus_io_port", "__meta_kubernetes_pod_ip"},
			Regex:        `(\d+);(.*:.*)`,
			TargetLabel:  "__address__",
			Replacement:  "[$2]:$1",
			Action:       "replace",
		},
	)
	return scrapeConfig{
		JobName:             JobPods,
		KubernetesSDConfigs: []kubernetesSDConfig{{Role: "pod"}},
		RelabelConfigs:      append(rules, targetLabels()...),
	}
}

// cniJob scrapes the CNI node agent's named metrics port of the istio-cni-node DaemonSet's pods.
func cniJob(opts Options) scrapeConfig {
	return podPortJob(JobCNI, opts.CNINamespace, "", "__meta_kubernetes_pod_label_k8s_app", cniPodLabelValue, cniPortName)
}

// ztunnelJob scrapes ztunnel's stats port; its pods carry no prometheus.io annotations.
func ztunnelJob(opts Options) scrapeConfig {
	return podPortJob(JobZtunnel, opts.IstioNamespace, ztunnelMetricsPath,
		"__meta_kubernetes_pod_label_app", ztunnelAppLabel, ztunnelPortName)
}

// podPortJob scrapes one named container port of the running pods in namespace whose label has the given value.
// Discovery yields one target per container port, so keeping the port by name also picks the address.
func podPortJob(job, namespace, path, label, value, port string) scrapeConfig {
	return scrapeConfig{
		JobName:             job,
		MetricsPath:         path,
		KubernetesSDConfigs: []kubernetesSDConfig{inNamespace("pod", namespace)},
		RelabelConfigs: append([]relabelConfig{
			keep(regexp.QuoteMeta(value), label),
			keep(regexp.QuoteMeta(port), "__meta_kubernetes_pod_container_port_name"),
			keep("Running", "__meta_kubernetes_pod_phase"),
		}, targetLabels()...),
	}
}

// targetLabels names each series' pod the way Istio's dashboards query it (namespace, pod, app).
func targetLabels() []relabelConfig {
	return []relabelConfig{
		copyLabel("__meta_kubernetes_namespace", "namespace"),
		copyLabel("__meta_kubernetes_pod_name", "pod"),
		copyLabel("__meta_kubernetes_pod_label_app", "app"),
	}
}

func inNamespace(role, namespace string) kubernetesSDConfig {
	return kubernetesSDConfig{Role: role, Namespaces: &namespaceDiscovery{Names: []string{namespace}}}
}

func keep(regex string, labels ...string) relabelConfig {
	return relabelConfig{SourceLabels: labels, Regex: regex, Action: "keep"}
}

func drop(regex string, labels ...string) relabelConfig {
	return relabelConfig{SourceLabels: labels, Regex: regex, Action: "drop"}
}

func copyLabel(from, to string) relabelConfig {
	return relabelConfig{SourceLabels: []string{from}, TargetLabel: to, Action: "replace"}
}
