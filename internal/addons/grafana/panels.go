package grafana

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Units Grafana understands for the panels below.
const (
	unitRequests   = "reqps"
	unitPercent    = "percentunit"
	unitMillis     = "ms"
	unitBytesRate  = "Bps"
	unitBytes      = "bytes"
	unitCores      = "short"
	unitPerSecond  = "ops"
	unitCount      = "short"
	panelHeight    = 8
	fullWidth      = 24
	statWidth      = 6
	halfWidth      = 12
	thirdWidth     = 8
	refreshEvery   = "30s"
	defaultTimeAgo = "now-1h"
)

// query is one PromQL expression and the legend of the series it returns.
type query struct {
	expr   string
	legend string
}

// board wraps the SDK's builder so that every panel, target and variable gets the same datasource and panels get
// stable IDs in the order they are added, which keeps the rendered JSON deterministic.
type board struct {
	builder    *dashboard.DashboardBuilder
	datasource common.DataSourceRef
	nextID     uint32
}

func newBoard(uid, title, description string, opts Options) *board {
	builder := dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags([]string{"meshwright", "istio"}).
		Refresh(refreshEvery).
		Time(defaultTimeAgo, "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair)
	return &board{builder: builder, datasource: prometheusDatasource(opts.DatasourceUID)}
}

func prometheusDatasource(uid string) common.DataSourceRef {
	kind := "prometheus"
	return common.DataSourceRef{Type: &kind, Uid: &uid}
}

func (b *board) id() uint32 {
	b.nextID++
	return b.nextID
}

func (b *board) row(title string) *board {
	b.builder.WithRow(dashboard.NewRowBuilder(title).Id(b.id()))
	return b
}

func (b *board) targets(queries []query, instant bool) []cog.Builder[variants.Dataquery] {
	targets := make([]cog.Builder[variants.Dataquery], 0, len(queries))
	for i, q := range queries {
		target := prometheus.NewDataqueryBuilder().
			RefId(string(rune('A' + i))).
			Datasource(b.datasource).
			Expr(q.expr).
			LegendFormat(q.legend)
		if instant {
			target.Instant().Format(prometheus.PromQueryFormatTable)
		} else {
			target.Range()
		}
		targets = append(targets, target)
	}
	return targets
}

func (b *board) timeseries(title, description, unit string, width uint32, queries ...query) *board {
	b.builder.WithPanel(timeseries.NewPanelBuilder().
		Id(b.id()).
		Title(title).
		Description(description).
		Datasource(b.datasource).
		Unit(unit).
		Min(0).
		Height(panelHeight).
		Span(width).
		Legend(common.NewVizLegendOptionsBuilder().
			ShowLegend(true).
			DisplayMode(common.LegendDisplayModeList).
			Placement(common.LegendPlacementBottom)).
		Tooltip(common.NewVizTooltipOptionsBuilder().
			Mode(common.TooltipDisplayModeMulti).
			Sort(common.SortOrderDescending)).
		Targets(b.targets(queries, false)))
	return b
}

func (b *board) stat(title, description, unit string, q query) *board {
	b.builder.WithPanel(stat.NewPanelBuilder().
		Id(b.id()).
		Title(title).
		Description(description).
		Datasource(b.datasource).
		Unit(unit).
		Height(panelHeight / 2).
		Span(statWidth).
		Orientation(common.VizOrientationAuto).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})).
		Targets(b.targets([]query{q}, false)))
	return b
}

// table shows one instant query as rows, for rankings such as the busiest services.
func (b *board) table(title, description, unit string, q query) *board {
	b.builder.WithPanel(table.NewPanelBuilder().
		Id(b.id()).
		Title(title).
		Description(description).
		Datasource(b.datasource).
		Unit(unit).
		Height(panelHeight).
		Span(halfWidth).
		Targets(b.targets([]query{q}, true)))
	return b
}

// variable adds a single-valued template variable filled by a Prometheus label_values query.
func (b *board) variable(name, label, labelValuesQuery string) *board {
	definition := dashboard.StringOrMap{String: &labelValuesQuery}
	b.builder.WithVariable(dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Datasource(b.datasource).
		Query(definition).
		Definition(labelValuesQuery).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc))
	return b
}
