package grafana

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
)

// Grafana expands these before Prometheus sees a query; the values only have to keep the PromQL well-formed.
var (
	grafanaIntervals = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")
	grafanaVariable  = regexp.MustCompile(`\$\{?[A-Za-z_][A-Za-z0-9_]*\}?`)
	// Grafana's Prometheus variable query label_values(<series selector>, <label>); the selector is PromQL.
	labelValuesQuery = regexp.MustCompile(`^label_values\((.+),\s*([A-Za-z_][A-Za-z0-9_]*)\)$`)
)

// promQLSource is one PromQL expression and where it sits, for failure messages.
type promQLSource struct {
	where string
	expr  string
}

// allPromQL collects every target expression and the series selector of every label_values variable.
func allPromQL(t *testing.T, opts Options) []promQLSource {
	t.Helper()
	var out []promQLSource
	for name, d := range renderScenario(t, opts) {
		for _, p := range d.dataPanels() {
			for _, target := range p.Targets {
				out = append(out, promQLSource{where: name + " panel " + p.Title + " target " + target.RefID, expr: target.Expr})
			}
		}
		for _, v := range d.Templating.List {
			m := labelValuesQuery.FindStringSubmatch(v.Query)
			if m == nil {
				t.Errorf("%s variable %s: query %q is not label_values(<selector>, <label>)", name, v.Name, v.Query)
				continue
			}
			out = append(out, promQLSource{where: name + " variable " + v.Name, expr: m[1]})
		}
	}
	slices.SortFunc(out, func(a, b promQLSource) int { return strings.Compare(a.where, b.where) })
	return out
}

func parsePromQL(src promQLSource) (parser.Expr, error) {
	expanded := grafanaVariable.ReplaceAllString(grafanaIntervals.Replace(src.expr), "placeholder")
	return parser.NewParser(parser.Options{}).ParseExpr(expanded)
}

// metricNames lists the metric names an expression selects.
func metricNames(expr parser.Expr) []string {
	var names []string
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			names = append(names, vs.Name)
		}
		return nil
	})
	return names
}

func TestEveryQueryIsValidPromQL(t *testing.T) {
	for _, sc := range scenarios {
		t.Run("every "+sc.name+" query parses with the Prometheus PromQL parser", func(t *testing.T) {
			sources := allPromQL(t, sc.opts)
			if len(sources) == 0 {
				t.Fatal("found no PromQL to check")
			}
			for _, src := range sources {
				expr, err := parsePromQL(src)
				if err != nil {
					t.Errorf("%s: %q: %v", src.where, src.expr, err)
					continue
				}
				for _, name := range metricNames(expr) {
					if name == "" {
						t.Errorf("%s: %q selects series without a metric name", src.where, src.expr)
					}
				}
			}
		})
	}
}

func TestThePromQLCheckRejectsBrokenQueries(t *testing.T) {
	cases := []struct {
		name string
		expr string
	}{
		{name: "an unbalanced parenthesis is reported", expr: `sum(rate(istio_requests_total[$__rate_interval])`},
		{name: "a range vector where an instant vector belongs is reported", expr: `sum(istio_requests_total[5m])`},
		{name: "an unquoted variable in a matcher is reported", expr: `sum(istio_requests_total{pod=$pod})`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parsePromQL(promQLSource{where: tc.name, expr: tc.expr}); err == nil {
				t.Errorf("%q parsed without error", tc.expr)
			}
		})
	}
}
