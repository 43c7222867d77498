package grafana

import (
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// ztunnelDashboard shows the ambient node proxies. ztunnel reports the standard TCP metrics as the source for
// outbound and as the destination for inbound connections, hence the split by reporter. Its CPU and memory come
// from cAdvisor, because ztunnel exports no process CPU or memory metrics of its own.
func ztunnelDashboard(opts Options) *dashboard.DashboardBuilder {
	return newBoard("meshwright-ztunnel", "ztunnel",
		"Connections, bytes and resource use of the ambient node proxies.", opts).
		row("Connections").
		timeseries("Connections opened", "TCP connections opened per second.", unitPerSecond, halfWidth,
			query{expr: sumRate("reporter", metricTCPOpened, ztunnelPods), legend: "{{reporter}}"}).
		timeseries("Connections closed", "TCP connections closed per second.", unitPerSecond, halfWidth,
			query{expr: sumRate("reporter", metricTCPClosed, ztunnelPods), legend: "{{reporter}}"}).
		row("Bytes").
		timeseries("Bytes sent", "Bytes per second sent over proxied connections.", unitBytesRate, halfWidth,
			query{expr: sumRate("reporter", metricTCPSent, ztunnelPods), legend: "{{reporter}}"}).
		timeseries("Bytes received", "Bytes per second received over proxied connections.", unitBytesRate,
			halfWidth,
			query{expr: sumRate("reporter", metricTCPReceived, ztunnelPods), legend: "{{reporter}}"}).
		row("Resources").
		timeseries("CPU", "CPU cores each ztunnel uses.", unitCores, halfWidth,
			query{expr: sumRate("pod", metricContainerCPU, ztunnelPods, ztunnelContainer), legend: "{{pod}}"}).
		timeseries("Memory", "Working-set memory of each ztunnel.", unitBytes, halfWidth,
			query{expr: sumBy("pod", metricContainerMemo+selector(ztunnelPods, ztunnelContainer)), legend: "{{pod}}"}).
		builder
}
