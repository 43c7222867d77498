package grafana

import (
	"go/ast"
	goparser "go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// istioModules are the aliased istio.io/istio modules of the Istio minors Meshwright installs.
var istioModules = []string{"github.com/meshwright/istio-1.30", "github.com/meshwright/istio-1.31"}

// cAdvisorMetrics are the kubelet's container metrics the ztunnel dashboard reads. cAdvisor is not in this module's
// graph, so the names are listed from its documentation:
// https://github.com/google/cadvisor/blob/master/docs/storage/prometheus.md
var cAdvisorMetrics = map[string]bool{
	"container_cpu_usage_seconds_total":  true,
	"container_memory_working_set_bytes": true,
}

// istioSourceMetric matches istiod's metric definitions, e.g. monitoring.NewSum("pilot_xds_pushes", ...).
var istioSourceMetric = regexp.MustCompile(`monitoring\.New(Sum|Gauge|Distribution)\(\s*"([a-z0-9_]+)"`)

// knownMetrics is every metric name one source exports, keyed by where it was found.
type knownMetrics map[string]string

func moduleDir(t *testing.T, module string) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module).Output()
	if err != nil {
		t.Fatalf("locating %s in the module cache: %v", module, err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		t.Fatalf("%s has no directory in the module cache; run go mod download", module)
	}
	return dir
}

// istiodMetrics scans Istio's pilot/ and pkg/ sources for metric definitions and returns the names Prometheus sees:
// sums and gauges as defined (Istio's exporter drops the _total suffix), distributions as _bucket, _sum and _count.
func istiodMetrics(t *testing.T, root string) knownMetrics {
	t.Helper()
	monitoring, err := os.ReadFile(filepath.Join(root, "pkg", "monitoring", "monitoring.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(monitoring), "otelprom.WithoutCounterSuffixes()") {
		t.Fatalf("%s: Istio's exporter no longer drops counter suffixes; istiod sums now end in _total", root)
	}
	known := knownMetrics{}
	for _, dir := range []string{"pilot", "pkg"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, entry fs.DirEntry, err error) error {
			if err != nil || entry.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			for _, m := range istioSourceMetric.FindAllStringSubmatch(string(src), -1) {
				for _, name := range exportedNames(m[1], m[2]) {
					known[name] = rel
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("scanning %s: %v", root, err)
		}
	}
	return known
}

func exportedNames(kind, name string) []string {
	if kind == "Distribution" {
		return []string{name + "_bucket", name + "_sum", name + "_count"}
	}
	return []string{name}
}

// standardProxyMetrics reads Istio's standard metric names from the map the Telemetry API uses to name them
// (pilot/pkg/model/telemetry.go, metricToPrometheusMetric). Envoy's stats prefix them with istio_; counters end in
// _total, the others are histograms.
func standardProxyMetrics(t *testing.T, root string) knownMetrics {
	t.Helper()
	const file = "pilot/pkg/model/telemetry.go"
	parsed, err := goparser.ParseFile(token.NewFileSet(), filepath.Join(root, file), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	known := knownMetrics{}
	ast.Inspect(parsed, func(node ast.Node) bool {
		spec, ok := node.(*ast.ValueSpec)
		if !ok || len(spec.Names) != 1 || spec.Names[0].Name != "metricToPrometheusMetric" || len(spec.Values) != 1 {
			return true
		}
		literal, ok := spec.Values[0].(*ast.CompositeLit)
		if !ok {
			return true
		}
		for _, elt := range literal.Elts {
			kv, ok := elt.(*ast.KeyValueExpr)
			if !ok {
				continue
			}
			value, ok := kv.Value.(*ast.BasicLit)
			if !ok {
				continue
			}
			name, err := strconv.Unquote(value.Value)
			if err != nil {
				t.Fatal(err)
			}
			kind := "Distribution"
			if strings.HasSuffix(name, "_total") {
				kind = "Sum"
			}
			for _, exported := range exportedNames(kind, "istio_"+name) {
				known[exported] = file
			}
		}
		return false
	})
	if len(known) == 0 {
		t.Fatalf("%s: found no metricToPrometheusMetric map of standard metrics", file)
	}
	return known
}

// istiodUsesTheDefaultRegistry checks that istiod serves client_golang's default registry, whose process and Go
// collectors provide the process_* and go_* metrics the control plane dashboard reads.
func istiodUsesTheDefaultRegistry(t *testing.T, root string) {
	t.Helper()
	const file = "pilot/pkg/bootstrap/server.go"
	src, err := os.ReadFile(filepath.Join(root, file))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), "monitoring.RegisterPrometheusExporter(nil, nil)") {
		t.Fatalf("%s/%s: istiod no longer serves the default Prometheus registry", root, file)
	}
}

// defaultCollectorMetrics are the names client_golang's default registry exports: the process and Go collectors.
func defaultCollectorMetrics(t *testing.T) knownMetrics {
	t.Helper()
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatalf("gathering client_golang's default registry: %v", err)
	}
	known := knownMetrics{}
	for _, family := range families {
		known[family.GetName()] = "client_golang default registry"
	}
	return known
}

func TestEveryMetricIsExportedByItsSource(t *testing.T) {
	processMetrics := defaultCollectorMetrics(t)
	for _, module := range istioModules {
		root := moduleDir(t, module)
		istiod := istiodMetrics(t, root)
		proxy := standardProxyMetrics(t, root)
		istiodUsesTheDefaultRegistry(t, root)
		ztunnelChart, err := os.ReadFile(filepath.Join(root, "manifests", "charts", "ztunnel", "templates", "daemonset.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(ztunnelChart), "- name: istio-proxy") {
			t.Errorf("%s: ztunnel's container is no longer named istio-proxy, which the ztunnel dashboard selects", module)
		}
		for _, sc := range scenarios {
			t.Run("every metric of the "+sc.name+" dashboards exists in "+module, func(t *testing.T) {
				for _, src := range allPromQL(t, sc.opts) {
					expr, err := parsePromQL(src)
					if err != nil {
						t.Fatalf("%s: %v", src.where, err)
					}
					for _, name := range metricNames(expr) {
						if _, ok := sourceFor(name, istiod, proxy, processMetrics); !ok {
							t.Errorf("%s: metric %s is not exported by its source in %s", src.where, name, module)
						}
					}
				}
			})
		}
	}
}

// sourceFor finds a metric among the names exported by the component its prefix belongs to.
func sourceFor(name string, istiod, proxy, process knownMetrics) (string, bool) {
	var known knownMetrics
	switch {
	case strings.HasPrefix(name, "istio_"):
		known = proxy
	case strings.HasPrefix(name, "pilot_"), strings.HasPrefix(name, "sidecar_injection_"):
		known = istiod
	case strings.HasPrefix(name, "process_"), strings.HasPrefix(name, "go_"):
		known = process
	case cAdvisorMetrics[name]:
		return "cAdvisor documentation", true
	default:
		return "", false
	}
	where, ok := known[name]
	return where, ok
}

func TestTheMetricSourcesCatchUnknownNames(t *testing.T) {
	root := moduleDir(t, istioModules[len(istioModules)-1])
	istiod := istiodMetrics(t, root)
	proxy := standardProxyMetrics(t, root)
	process := defaultCollectorMetrics(t)
	cases := []struct {
		name   string
		metric string
		known  bool
	}{
		{name: "istiod's push counter is found without a _total suffix", metric: "pilot_xds_pushes", known: true},
		{name: "istiod's push counter with a _total suffix is not", metric: "pilot_xds_pushes_total", known: false},
		{name: "a distribution is found by its buckets", metric: "pilot_xds_push_time_bucket", known: true},
		{name: "a distribution is not found by its bare name", metric: "pilot_xds_push_time", known: false},
		{name: "the standard request counter is found", metric: "istio_requests_total", known: true},
		{name: "the standard duration histogram is found by its buckets", metric: "istio_request_duration_milliseconds_bucket", known: true},
		{name: "a misspelled standard metric is not found", metric: "istio_request_total", known: false},
		{name: "the process CPU counter is found", metric: "process_cpu_seconds_total", known: true},
		{name: "a metric of no known component is not found", metric: "envoy_cluster_upstream_rq", known: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := sourceFor(tc.metric, istiod, proxy, process); ok != tc.known {
				t.Errorf("sourceFor(%s) found = %v, want %v", tc.metric, ok, tc.known)
			}
		})
	}
}
