// Package grafana owns the dashboards Meshwright provisions into its Grafana add-on: the mesh overview, the
// per-service and per-workload views, the control plane (istiod) and, in ambient mode, ztunnel. Dashboards are
// built as Go code with the Grafana Foundation SDK and rendered to JSON files for Grafana's file provisioning.
//
// The package is pure: it takes one Options value and returns bytes, with no Kubernetes client, clock or
// randomness, so its output is golden-tested. It must not hold anyone else's dashboard JSON; every query is ours.
//
// Queries assume the Prometheus add-on scrapes pods with the conventional target labels namespace and pod, and
// kubelet's cAdvisor endpoint for container CPU and memory (ztunnel exports no process CPU or memory of its own).
package grafana

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// Options selects what the dashboards show and where their queries go.
type Options struct {
	// Ambient adds the ztunnel dashboard and counts waypoint-reported HTTP traffic.
	Ambient bool
	// DatasourceUID is the UID of the provisioned Prometheus datasource every panel and variable queries.
	DatasourceUID string
}

// File names of the rendered dashboards, as Grafana's file provider will see them.
const (
	MeshFile         = "meshwright-mesh.json"
	ServiceFile      = "meshwright-service.json"
	WorkloadFile     = "meshwright-workload.json"
	ControlPlaneFile = "meshwright-istiod.json"
	ZtunnelFile      = "meshwright-ztunnel.json"
)

// Dashboards renders every dashboard the options call for, keyed by file name. The same options always yield the
// same bytes.
func Dashboards(opts Options) (map[string][]byte, error) {
	if opts.DatasourceUID == "" {
		return nil, errors.New("rendering Grafana dashboards: a Prometheus datasource UID is required")
	}
	builders := map[string]func(Options) *dashboard.DashboardBuilder{
		MeshFile:         meshDashboard,
		ServiceFile:      serviceDashboard,
		WorkloadFile:     workloadDashboard,
		ControlPlaneFile: controlPlaneDashboard,
	}
	if opts.Ambient {
		builders[ZtunnelFile] = ztunnelDashboard
	}
	files := make(map[string][]byte, len(builders))
	for name, build := range builders {
		data, err := render(build(opts))
		if err != nil {
			return nil, fmt.Errorf("rendering Grafana dashboard %s: %w", name, err)
		}
		files[name] = data
	}
	return files, nil
}

func render(builder *dashboard.DashboardBuilder) ([]byte, error) {
	board, err := builder.Build()
	if err != nil {
		return nil, fmt.Errorf("building dashboard: %w", err)
	}
	data, err := json.MarshalIndent(board, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding dashboard: %w", err)
	}
	return append(data, '\n'), nil
}
