package grafana

import (
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// controlPlaneDashboard shows istiod: configuration pushes, connected proxies, sidecar injection and its own
// resource use.
func controlPlaneDashboard(opts Options) *dashboard.DashboardBuilder {
	return newBoard("meshwright-istiod", "Control plane (istiod)",
		"Configuration pushes, connected proxies, sidecar injection and resource use of istiod.", opts).
		row("Configuration").
		timeseries("xDS pushes", "Configuration pushes per second, by xDS type.", unitPerSecond, halfWidth,
			query{expr: sumRate("type", metricXDSPushes, pushesWithoutErrs), legend: "{{type}}"}).
		timeseries("xDS push errors", "Pushes istiod failed to send or build, and configuration proxies rejected.",
			unitPerSecond, halfWidth,
			query{expr: sumRate("type", metricXDSPushes, pushSendErrors), legend: "{{type}}"},
			query{expr: sumRate("", metricXDSInternalErrors), legend: "internal errors"},
			query{expr: sumRate("", metricXDSRejects), legend: "rejected by proxies"}).
		timeseries("Connected proxies", "Proxies holding an xDS connection to istiod, by proxy version.", unitCount,
			halfWidth,
			query{expr: sumBy("version", metricXDSClients), legend: "{{version}}"}).
		timeseries("xDS push time", "Time istiod takes to push configuration.", "s", halfWidth,
			query{expr: "histogram_quantile(0.5, " + sumRate("le", metricXDSPushTime) + ")", legend: "p50"},
			query{expr: "histogram_quantile(0.99, " + sumRate("le", metricXDSPushTime) + ")", legend: "p99"}).
		row("Sidecar injection").
		timeseries("Injection requests", "Sidecar injection webhook requests per second, and their outcome.",
			unitPerSecond, fullWidth,
			query{expr: sumRate("", metricInjectionRequests), legend: "requests"},
			query{expr: sumRate("", metricInjectionSuccesses), legend: "succeeded"},
			query{expr: sumRate("", metricInjectionFailures), legend: "failed"}).
		row("Resources").
		timeseries("CPU", "CPU cores istiod uses, per pod.", unitCores, thirdWidth,
			query{expr: sumRate("pod", metricProcessCPU, istiodPods), legend: "{{pod}}"}).
		timeseries("Memory", "Resident memory and Go heap in use, per pod.", unitBytes, thirdWidth,
			query{expr: sumBy("pod", metricProcessRSS+selector(istiodPods)), legend: "{{pod}} resident"},
			query{expr: sumBy("pod", metricGoHeapInUse+selector(istiodPods)), legend: "{{pod}} heap"}).
		timeseries("Goroutines", "Goroutines per istiod pod.", unitCount, thirdWidth,
			query{expr: sumBy("pod", metricGoGoroutines+selector(istiodPods)), legend: "{{pod}}"}).
		builder
}
