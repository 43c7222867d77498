package render

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"helm.sh/helm/v3/pkg/chart"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshwright/meshwright/internal/istio"
)

// Istio's base chart renders its CRDs in templates/crds.yaml: for each CRD of files/crd-all.gen.yaml it parses the
// document twice, replaces the labels and writes it out again, after which the render decodes it a fourth time. That
// is three quarters of a render's CPU (about 150 of 200 ms here), all of it on the path of a first install. So the base
// chart is rendered with that one template replaced by crdPlanTemplate, which only decides what the original decides
// (whether CRDs are rendered at all, templated or as the file has them, which are excluded, which labels they get), and
// the CRDs are decoded once from the file, in Go, with that plan.
//
// The replacement is made only for a crds.yaml this package knows (knownCRDTemplates, by SHA-256): a chart whose
// template differs is rendered by its own template, slower but right. TestCRDPlanMatchesTheChartsOwnTemplate renders
// every catalog version both ways and compares the objects.
const (
	crdTemplate = "templates/crds.yaml"
	crdFile     = "files/crd-all.gen.yaml"
)

// knownCRDTemplates are the SHA-256 sums of the crds.yaml templates crdPlanTemplate stands in for.
var knownCRDTemplates = map[string]bool{
	"78d49e6096437556c245bf1d90957b64a03f9dbf776d88256dee400bcf57f0b5": true, // Istio 1.30 and 1.31
}

// crdPlanTemplate reproduces the decisions of the base chart's crds.yaml and leaves the work to crdsFromPlan. Its
// output is one JSON object: {"raw": true} for the file as it is, or the labels that replace each CRD's labels and the
// names of the CRDs to leave out; nothing when the resource scope excludes cluster-scoped objects.
const crdPlanTemplate = `{{- if or (eq .Values.global.resourceScope "all") (eq .Values.global.resourceScope "cluster") }}
{{- if .Values.base.enableCRDTemplates }}
{{- dict "labels" (include "istio.labels" . | fromYaml) "excluded" (.Values.base.excludedCRDs | default list) | toJson }}
{{- else }}
{"raw": true}
{{- end }}
{{- end }}
`

// crdPlan is crdPlanTemplate's output.
type crdPlan struct {
	Raw      bool              `json:"raw"`
	Labels   map[string]string `json:"labels"`
	Excluded []string          `json:"excluded"`
}

var planCharts sync.Map // *chart.Chart → *chart.Chart with crdPlanTemplate, or nil when the chart keeps its own

// withCRDPlan returns chrt with its crds.yaml replaced by crdPlanTemplate, or nil when chrt has no crds.yaml this package
// knows, or no CRD file. The copy shares everything else with chrt (charts are never modified).
func withCRDPlan(chrt *chart.Chart) *chart.Chart {
	if c, ok := planCharts.Load(chrt); ok {
		return c.(*chart.Chart)
	}
	var plan *chart.Chart
	if crdFileOf(chrt) != nil {
		for i, t := range chrt.Templates {
			sum := sha256.Sum256(t.Data)
			if t.Name != crdTemplate || !knownCRDTemplates[hex.EncodeToString(sum[:])] {
				continue
			}
			c := *chrt
			c.Templates = append([]*chart.File(nil), chrt.Templates...)
			c.Templates[i] = &chart.File{Name: crdTemplate, Data: []byte(crdPlanTemplate)}
			plan = &c
		}
	}
	planCharts.Store(chrt, plan)
	return plan
}

func crdFileOf(chrt *chart.Chart) *chart.File {
	for _, f := range chrt.Files {
		if f.Name == crdFile {
			return f
		}
	}
	return nil
}

// crdsFromPlan returns the CRDs the original crds.yaml would have rendered, given crdPlanTemplate's output.
func crdsFromPlan(chrt *chart.Chart, out string) ([]*unstructured.Unstructured, error) {
	if strings.TrimSpace(out) == "" {
		return nil, nil
	}
	var plan crdPlan
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		return nil, fmt.Errorf("reading the CRD plan %q: %w", out, err)
	}
	objs, err := decodedCRDs(chrt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", crdFile, err)
	}
	if plan.Raw {
		return objs, nil
	}
	kept := objs[:0]
	for _, o := range objs {
		if slices.Contains(plan.Excluded, o.GetName()) {
			continue
		}
		// As the template does: the labels are replaced, not merged.
		if err := unstructured.SetNestedStringMap(o.Object, plan.Labels, "metadata", "labels"); err != nil {
			return nil, err
		}
		kept = append(kept, o)
	}
	return kept, nil
}

// A prefetch decodes a base chart's CRDs before the render that needs them starts: at start-up the operator decodes
// them while it waits for the API server (discovery, the Lease), so that the first render, which the first install
// waits for, finds them done. Each prefetch serves one render, which takes its objects.
type prefetch struct {
	done chan struct{}
	objs []*unstructured.Unstructured
	err  error
}

var prefetches sync.Map // *chart.Chart → *prefetch

// PrefetchCRDs starts decoding the CRDs of version v's base chart in the background, for the next render of v.
func PrefetchCRDs(v istio.Version) {
	chrt, err := istio.LoadChart(v, istio.ChartBase)
	if err != nil || crdFileOf(chrt) == nil {
		return // the render reports it
	}
	p := &prefetch{done: make(chan struct{})}
	if _, running := prefetches.LoadOrStore(chrt, p); running {
		return
	}
	go func() {
		defer close(p.done)
		// One goroutine: the process meanwhile starts its manager, takes the Lease and syncs its informers, which the
		// first install waits for as much as for this; it is done long before they are.
		p.objs, p.err = decodeCRDs(string(crdFileOf(chrt).Data), 1)
	}()
}

// ForgetPrefetched drops the prefetches no render took (a render of another version came first), so that their
// objects are not held for the life of the process.
func ForgetPrefetched() {
	prefetches.Clear()
}

// decodedCRDs returns chrt's CRDs, from its prefetch if one was made, else decoded now.
func decodedCRDs(chrt *chart.Chart) ([]*unstructured.Unstructured, error) {
	if p, ok := prefetches.LoadAndDelete(chrt); ok {
		<-p.(*prefetch).done
		return p.(*prefetch).objs, p.(*prefetch).err
	}
	return decodeCRDs(string(crdFileOf(chrt).Data), runtime.GOMAXPROCS(0))
}
