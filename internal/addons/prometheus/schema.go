package prometheus

// The subset of Prometheus's configuration file this package writes. Field order is the order in the file; the
// tests load the result with Prometheus's own config package, so a misspelt key fails there.

type configFile struct {
	Global        globalConfig   `yaml:"global"`
	ScrapeConfigs []scrapeConfig `yaml:"scrape_configs"`
}

type globalConfig struct {
	ScrapeInterval     string `yaml:"scrape_interval"`
	EvaluationInterval string `yaml:"evaluation_interval"`
}

type scrapeConfig struct {
	JobName             string               `yaml:"job_name"`
	MetricsPath         string               `yaml:"metrics_path,omitempty"`
	StaticConfigs       []staticConfig       `yaml:"static_configs,omitempty"`
	KubernetesSDConfigs []kubernetesSDConfig `yaml:"kubernetes_sd_configs,omitempty"`
	RelabelConfigs      []relabelConfig      `yaml:"relabel_configs,omitempty"`
}

type staticConfig struct {
	Targets []string `yaml:"targets"`
}

// kubernetesSDConfig names no API server, so Prometheus uses the in-cluster configuration: the pod's ServiceAccount.
type kubernetesSDConfig struct {
	Role       string              `yaml:"role"`
	Namespaces *namespaceDiscovery `yaml:"namespaces,omitempty"`
}

type namespaceDiscovery struct {
	Names []string `yaml:"names"`
}

type relabelConfig struct {
	SourceLabels []string `yaml:"source_labels,flow,omitempty"`
	Regex        string   `yaml:"regex,omitempty"`
	TargetLabel  string   `yaml:"target_label,omitempty"`
	Replacement  string   `yaml:"replacement,omitempty"`
	Action       string   `yaml:"action"`
}
