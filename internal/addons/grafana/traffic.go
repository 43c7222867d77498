package grafana

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// trafficSubject names the labels that pick one service or one workload out of the standard Istio metrics, so the
// service and workload dashboards share one layout.
type trafficSubject struct {
	uid, title, noun string
	// namespaceLabel and nameLabel are the destination labels the template variables fill.
	namespaceLabel, nameLabel string
	// variable is the template variable holding the chosen name.
	variable string
}

var (
	serviceSubject = trafficSubject{
		uid: "meshwright-service", title: "Service", noun: "service",
		namespaceLabel: "destination_service_namespace", nameLabel: "destination_service_name",
		variable: "service",
	}
	workloadSubject = trafficSubject{
		uid: "meshwright-workload", title: "Workload", noun: "workload",
		namespaceLabel: "destination_workload_namespace", nameLabel: "destination_workload",
		variable: "workload",
	}
)

func serviceDashboard(opts Options) *dashboard.DashboardBuilder {
	return trafficDashboard(serviceSubject, opts)
}

func workloadDashboard(opts Options) *dashboard.DashboardBuilder {
	return trafficDashboard(workloadSubject, opts)
}

// trafficDashboard shows what one service or workload receives: requests, errors, latency and TCP bytes.
func trafficDashboard(subject trafficSubject, opts Options) *dashboard.DashboardBuilder {
	reporter := httpReporter(opts)
	namespace := fmt.Sprintf(`%s="$namespace"`, subject.namespaceLabel)
	name := fmt.Sprintf(`%s="$%s"`, subject.nameLabel, subject.variable)
	b := newBoard(subject.uid, subject.title,
		fmt.Sprintf("Traffic received by one %s, as reported by its receiving side.", subject.noun), opts).
		variable("namespace", "Namespace", labelValues(metricRequests, subject.namespaceLabel, reporter)).
		variable(subject.variable, subject.title, labelValues(metricRequests, subject.nameLabel, reporter, namespace))
	return b.
		row("Requests").
		timeseries("Request rate", "Requests per second, split by response code.", unitRequests, thirdWidth,
			query{expr: sumRate("response_code", metricRequests, reporter, namespace, name), legend: "{{response_code}}"}).
		timeseries("5xx share", "Fraction of requests answered with a server error.", unitPercent, thirdWidth,
			query{expr: serverErrorShare("", reporter, namespace, name), legend: "5xx"}).
		timeseries("Request latency", "Request duration quantiles.", unitMillis, thirdWidth,
			latencyQueries(reporter, namespace, name)...).
		timeseries("Requests by client", "Requests per second, split by the calling workload.", unitRequests,
			fullWidth,
			query{
				expr:   sumRate("source_workload_namespace, source_workload", metricRequests, reporter, namespace, name),
				legend: "{{source_workload_namespace}}/{{source_workload}}",
			}).
		row("TCP").
		timeseries("TCP bytes sent", fmt.Sprintf("Bytes per second the %s sent over TCP connections.", subject.noun),
			unitBytesRate, halfWidth,
			query{expr: sumRate("", metricTCPSent, tcpReporter, namespace, name), legend: "sent"}).
		timeseries("TCP bytes received",
			fmt.Sprintf("Bytes per second the %s received over TCP connections.", subject.noun),
			unitBytesRate, halfWidth,
			query{expr: sumRate("", metricTCPReceived, tcpReporter, namespace, name), legend: "received"}).
		builder
}
