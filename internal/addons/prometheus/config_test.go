package prometheus

import (
	"bytes"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery/kubernetes"
	"github.com/prometheus/prometheus/model/relabel"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// cases are the option sets kept as golden files and checked against Prometheus's own loader.
var cases = []struct {
	name string
	opts Options
}{
	{"no-cni", Options{IstioNamespace: "istio-system"}},
	{"cni", Options{IstioNamespace: "istio-system", CNINamespace: "kube-system"}},
	{"ambient", Options{IstioNamespace: "istio-system", CNINamespace: "istio-system", Ztunnel: true,
		ScrapeInterval: 30 * time.Second}},
}

// load renders opts and loads the text with Prometheus's config package, as the server does at start-up.
func load(t *testing.T, opts Options) *config.Config {
	t.Helper()
	out, err := Config(opts)
	if err != nil {
		t.Fatalf("Config(%+v): %v", opts, err)
	}
	cfg, err := config.Load(string(out), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Prometheus refuses the configuration: %v\n%s", err, out)
	}
	return cfg
}

func TestConfigMatchesGoldenFiles(t *testing.T) {
	for _, tc := range cases {
		t.Run("the "+tc.name+" configuration is the golden file", func(t *testing.T) {
			out, err := Config(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Config(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, again) {
				t.Fatal("two renders of the same options differ")
			}
			golden := filepath.Join("testdata", tc.name+".yaml")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run `go test ./internal/addons/prometheus -update`)", err)
			}
			if !bytes.Equal(out, want) {
				t.Fatalf("%s differs from the render; if the change is intended, run "+
					"`go test ./internal/addons/prometheus -update`\ngot:\n%s", golden, out)
			}
		})
	}
}

// wantJob is what a loaded scrape job must hold.
type wantJob struct {
	name       string
	role       kubernetes.Role // "" for a static job
	namespaces []string
	path       string
	actions    []relabel.Action
}

var (
	targetLabelActions = []relabel.Action{relabel.Replace, relabel.Replace, relabel.Replace}
	selfJob            = wantJob{name: JobPrometheus, path: "/metrics"}
	istiodWant         = wantJob{name: JobIstiod, role: kubernetes.RoleEndpointSlice, namespaces: []string{"istio-system"},
		path: "/metrics", actions: concat([]relabel.Action{relabel.Keep, relabel.Replace}, targetLabelActions)}
	portJobActions = concat([]relabel.Action{relabel.Keep, relabel.Keep, relabel.Keep}, targetLabelActions)
)

func podsWant(dropped int) wantJob {
	actions := []relabel.Action{relabel.Keep, relabel.Keep}
	for range dropped {
		actions = append(actions, relabel.Drop)
	}
	actions = append(actions, relabel.Replace, relabel.Replace, relabel.Replace)
	return wantJob{name: JobPods, role: kubernetes.RolePod, path: "/metrics", actions: concat(actions, targetLabelActions)}
}

func concat(parts ...[]relabel.Action) []relabel.Action { return slices.Concat(parts...) }

func TestPrometheusLoadsEveryJob(t *testing.T) {
	want := map[string]struct {
		interval time.Duration
		jobs     []wantJob
	}{
		"no-cni": {15 * time.Second, []wantJob{selfJob, istiodWant, podsWant(1)}},
		"cni": {15 * time.Second, []wantJob{selfJob, istiodWant, podsWant(2),
			{name: JobCNI, role: kubernetes.RolePod, namespaces: []string{"kube-system"}, path: "/metrics", actions: portJobActions}}},
		"ambient": {30 * time.Second, []wantJob{selfJob, istiodWant, podsWant(2),
			{name: JobCNI, role: kubernetes.RolePod, namespaces: []string{"istio-system"}, path: "/metrics", actions: portJobActions},
			{name: JobZtunnel, role: kubernetes.RolePod, namespaces: []string{"istio-system"}, path: "/stats/prometheus",
				actions: portJobActions}}},
	}
	for _, tc := range cases {
		t.Run("Prometheus loads the "+tc.name+" configuration with the expected jobs", func(t *testing.T) {
			cfg := load(t, tc.opts)
			w := want[tc.name]
			if got := time.Duration(cfg.GlobalConfig.ScrapeInterval); got != w.interval {
				t.Errorf("scrape interval %s, want %s", got, w.interval)
			}
			var names, wantNames []string
			for _, sc := range cfg.ScrapeConfigs {
				names = append(names, sc.JobName)
			}
			for _, j := range w.jobs {
				wantNames = append(wantNames, j.name)
			}
			if !slices.Equal(names, wantNames) {
				t.Fatalf("jobs %v, want %v", names, wantNames)
			}
			for i, j := range w.jobs {
				checkJob(t, cfg.ScrapeConfigs[i], j)
			}
		})
	}
}

func checkJob(t *testing.T, sc *config.ScrapeConfig, want wantJob) {
	t.Helper()
	if sc.MetricsPath != want.path {
		t.Errorf("job %s: metrics path %q, want %q", want.name, sc.MetricsPath, want.path)
	}
	var actions []relabel.Action
	for _, rc := range sc.RelabelConfigs {
		actions = append(actions, rc.Action)
	}
	if !slices.Equal(actions, want.actions) {
		t.Errorf("job %s: relabel actions %v, want %v", want.name, actions, want.actions)
	}
	if len(sc.ServiceDiscoveryConfigs) != 1 {
		t.Fatalf("job %s: %d service discovery configs, want 1", want.name, len(sc.ServiceDiscoveryConfigs))
	}
	sd, isKubernetes := sc.ServiceDiscoveryConfigs[0].(*kubernetes.SDConfig)
	if want.role == "" {
		if isKubernetes {
			t.Errorf("job %s: Kubernetes discovery, want static targets", want.name)
		}
		return
	}
	if !isKubernetes {
		t.Fatalf("job %s: discovery %T, want Kubernetes", want.name, sc.ServiceDiscoveryConfigs[0])
	}
	if sd.Role != want.role {
		t.Errorf("job %s: role %s, want %s", want.name, sd.Role, want.role)
	}
	if !slices.Equal(sd.NamespaceDiscovery.Names, want.namespaces) {
		t.Errorf("job %s: namespaces %v, want %v", want.name, sd.NamespaceDiscovery.Names, want.namespaces)
	}
	if sd.APIServer.URL != nil || sd.KubeConfig != "" {
		t.Errorf("job %s: discovery names an API server or kubeconfig, want the in-cluster ServiceAccount", want.name)
	}
}

func TestConfigRefusesBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"a missing Istio namespace is refused", Options{}, "Istio namespace"},
		{"an Istio namespace that is no DNS label is refused", Options{IstioNamespace: "Istio_System"}, "Istio namespace"},
		{"a CNI namespace that is no DNS label is refused",
			Options{IstioNamespace: "istio-system", CNINamespace: "kube.system"}, "CNI namespace"},
		{"a negative interval is refused",
			Options{IstioNamespace: "istio-system", ScrapeInterval: -time.Second}, "must be positive"},
		{"an interval finer than a millisecond is refused",
			Options{IstioNamespace: "istio-system", ScrapeInterval: 1500 * time.Microsecond}, "milliseconds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Config(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestScrapeIntervalIsWrittenInPrometheusSyntax(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		want     time.Duration
	}{
		{0, 15 * time.Second},
		{5 * time.Second, 5 * time.Second},
		{90 * time.Second, 90 * time.Second},
		{2 * time.Hour, 2 * time.Hour},
		{1500 * time.Millisecond, 1500 * time.Millisecond},
	} {
		t.Run("an interval of "+tc.interval.String()+" loads as "+tc.want.String(), func(t *testing.T) {
			cfg := load(t, Options{IstioNamespace: "istio-system", ScrapeInterval: tc.interval})
			if got := time.Duration(cfg.GlobalConfig.ScrapeInterval); got != tc.want {
				t.Errorf("scrape interval %s, want %s", got, tc.want)
			}
			if got := time.Duration(cfg.GlobalConfig.EvaluationInterval); got != tc.want {
				t.Errorf("evaluation interval %s, want %s", got, tc.want)
			}
		})
	}
}
