package prometheus

import (
	"io/fs"
	"regexp"
	"strconv"
	"strings"
	"testing"

	istio130 "github.com/meshwright/istio-1.30/manifests"
	istio131 "github.com/meshwright/istio-1.31/manifests"
)

// The names and ports the jobs select on are Istio's, not ours: they are read from the chart templates of every
// Istio minor Meshwright installs, so that a rename in a new minor fails here instead of silently losing metrics.

var minors = map[string]fs.FS{"1.30": istio130.FS, "1.31": istio131.FS}

var (
	portItem = regexp.MustCompile(`^(\s*)- (?:containerPort|port): (\d+)\s*(?:#.*)?$`)
	nameLine = regexp.MustCompile(`^\s*name: (\S+)`)
)

// namedPorts maps each port name of a template's ports lists to its number. A list item runs from its "- port:" or
// "- containerPort:" line to the next line indented no deeper than its dash.
func namedPorts(template string) map[string]int {
	ports := map[string]int{}
	lines := strings.Split(template, "\n")
	for i, line := range lines {
		m := portItem.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		number, _ := strconv.Atoi(m[2])
		for _, next := range lines[i+1:] {
			if indent := len(next) - len(strings.TrimLeft(next, " ")); indent <= len(m[1]) {
				break
			}
			if n := nameLine.FindStringSubmatch(next); n != nil {
				ports[n[1]] = number
				break
			}
		}
	}
	return ports
}

func readTemplate(t *testing.T, charts fs.FS, path string) string {
	t.Helper()
	data, err := fs.ReadFile(charts, "charts/"+path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return string(data)
}

func TestNamedPortsReadsPortListsWhateverTheKeyOrder(t *testing.T) {
	template := `
  ports:
    - port: 15010
      name: grpc-xds # plaintext
    - containerPort: 8080
      protocol: TCP
    - containerPort: 15014
      protocol: TCP
      name: http-monitoring
  selector:
    name: not-a-port
`
	got := namedPorts(template)
	if len(got) != 2 || got["grpc-xds"] != 15010 || got["http-monitoring"] != 15014 {
		t.Fatalf("namedPorts = %v, want grpc-xds:15010 and http-monitoring:15014 only", got)
	}
}

func TestJobsSelectWhatIstioChartsName(t *testing.T) {
	for minor, charts := range minors {
		for _, tc := range []struct {
			name, template, portName string
			port                     int
			texts                    []string
		}{
			{"istiod's Service names its monitoring port", "istio-control/istio-discovery/templates/service.yaml",
				istiodPortName, 15014, []string{"name: istiod{{- if not (eq .Values.revision \"\") }}-{{ .Values.revision }}"}},
			{"istiod's pods carry the app label the annotated-pods job drops", "istio-control/istio-discovery/templates/deployment.yaml",
				"", 0, []string{"app: " + istiodAppLabel}},
			{"the CNI agent's pods expose the metrics port under the label the CNI job keeps", "istio-cni/templates/daemonset.yaml",
				cniPortName, 15014, []string{`k8s-app: {{ template "name" . }}-node`}},
			{"the CNI chart's name makes that label istio-cni-node", "istio-cni/templates/_helpers.tpl",
				"", 0, []string{"{{- define \"name\" -}}\n    " + strings.TrimSuffix(cniPodLabelValue, "-node") + "\n{{- end }}"}},
			{"ztunnel's pods expose the stats port under the label the ztunnel job keeps", "ztunnel/templates/daemonset.yaml",
				ztunnelPortName, 15020, []string{"app: " + ztunnelAppLabel}},
		} {
			t.Run("in Istio "+minor+", "+tc.name, func(t *testing.T) {
				template := readTemplate(t, charts, tc.template)
				if tc.portName != "" {
					if got, ok := namedPorts(template)[tc.portName]; !ok || got != tc.port {
						t.Errorf("port %q is %d (present: %v) in %s, want %d", tc.portName, got, ok, tc.template, tc.port)
					}
				}
				for _, text := range tc.texts {
					if !strings.Contains(template, text) {
						t.Errorf("%s no longer contains %q", tc.template, text)
					}
				}
			})
		}
	}
}
