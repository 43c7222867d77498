package grafana

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// meshDashboard is the landing page: the whole mesh's traffic and the services that stand out.
func meshDashboard(opts Options) *dashboard.DashboardBuilder {
	reporter := httpReporter(opts)
	return newBoard("meshwright-mesh", "Mesh overview",
		"Traffic across the whole mesh, as reported by the receiving side of each request.", opts).
		row("Traffic").
		stat("Request rate", "Requests per second across the mesh.", unitRequests,
			query{expr: sumRate("", metricRequests, reporter)}).
		stat("5xx share", "Fraction of requests answered with a server error.", unitPercent,
			query{expr: serverErrorShare("", reporter)}).
		stat("p99 latency", "99th percentile of request duration across the mesh.", unitMillis,
			query{expr: latency("0.99", reporter)}).
		stat("TCP throughput", "Bytes per second sent and received over TCP connections.", unitBytesRate,
			query{expr: fmt.Sprintf("%s + %s", sumRate("", metricTCPSent, tcpReporter), sumRate("", metricTCPReceived, tcpReporter))}).
		timeseries("Requests by response code", "Requests per second, split by HTTP or gRPC response code.",
			unitRequests, halfWidth,
			query{expr: sumRate("response_code", metricRequests, reporter), legend: "{{response_code}}"}).
		timeseries("Request latency", "Request duration quantiles across the mesh.", unitMillis, halfWidth,
			latencyQueries(reporter)...).
		timeseries("TCP bytes", "Bytes per second over TCP connections, from the receiving side.", unitBytesRate,
			halfWidth,
			query{expr: sumRate("", metricTCPSent, tcpReporter), legend: "sent"},
			query{expr: sumRate("", metricTCPReceived, tcpReporter), legend: "received"}).
		timeseries("5xx share", "Fraction of requests answered with a server error.", unitPercent, halfWidth,
			query{expr: serverErrorShare("", reporter), legend: "5xx"}).
		row("Top services").
		table("Busiest services", "The ten services receiving the most requests per second.", unitRequests,
			query{expr: topK(sumRate("destination_service", metricRequests, reporter))}).
		table("Services with the most server errors", "The ten services with the highest 5xx share.",
			unitPercent, query{expr: topK(serverErrorShare("destination_service", reporter))}).
		builder
}
