package grafana

import (
	"fmt"
	"strings"
)

// Metric names the dashboards query. The tests check each against Istio's own source (istiod and the standard
// proxy metrics), client_golang's default collectors, or a cited list (cAdvisor), so a rename upstream fails here.
const (
	metricRequests        = "istio_requests_total"
	metricRequestDuration = "istio_request_duration_milliseconds_bucket"
	metricTCPSent         = "istio_tcp_sent_bytes_total"
	metricTCPReceived     = "istio_tcp_received_bytes_total"
	metricTCPOpened       = "istio_tcp_connections_opened_total"
	metricTCPClosed       = "istio_tcp_connections_closed_total"

	// Istio's monitoring package exports sums without a _total suffix, so istiod's counters keep their own names.
	metricXDSPushes          = "pilot_xds_pushes"
	metricXDSInternalErrors  = "pilot_total_xds_internal_errors"
	metricXDSRejects         = "pilot_total_xds_rejects"
	metricXDSClients         = "pilot_xds"
	metricXDSPushTime        = "pilot_xds_push_time_bucket"
	metricInjectionRequests  = "sidecar_injection_requests_total"
	metricInjectionSuccesses = "sidecar_injection_success_total"
	metricInjectionFailures  = "sidecar_injection_failure_total"

	metricProcessCPU    = "process_cpu_seconds_total"
	metricProcessRSS    = "process_resident_memory_bytes"
	metricGoHeapInUse   = "go_memstats_heap_inuse_bytes"
	metricGoGoroutines  = "go_goroutines"
	metricContainerCPU  = "container_cpu_usage_seconds_total"
	metricContainerMemo = "container_memory_working_set_bytes"
)

// Grafana picks a rate window of at least four scrape intervals for this variable, so rates never come up empty.
const rateWindow = "$__rate_interval"

// Matchers for the pods whose process metrics are istiod's and ztunnel's. Every sidecar's pilot-agent exports the
// same process_* names, so istiod is singled out by pod name; revisioned deployments are named istiod-<revision>.
const (
	istiodPods        = `pod=~"istiod-.*"`
	ztunnelPods       = `pod=~"ztunnel-.*"`
	ztunnelContainer  = `container="istio-proxy"`
	serverErrors      = `response_code=~"5.."`
	pushSendErrors    = `type=~".*_senderr"`
	pushesWithoutErrs = `type!~".*_senderr"`
	// TCP metrics are counted once, on the receiving side: a sidecar or, in ambient mode, the destination ztunnel.
	tcpReporter = `reporter="destination"`
)

var latencyQuantiles = []struct{ quantile, legend string }{
	{quantile: "0.5", legend: "p50"},
	{quantile: "0.9", legend: "p90"},
	{quantile: "0.99", legend: "p99"},
}

// httpReporter selects one report per HTTP request. Without ambient the server sidecar reports it; in ambient mode
// a destination without a sidecar is reported by its waypoint instead.
func httpReporter(opts Options) string {
	if opts.Ambient {
		return `reporter=~"destination|waypoint"`
	}
	return `reporter="destination"`
}

// selector joins label matchers into a PromQL selector, skipping empty ones.
func selector(matchers ...string) string {
	kept := make([]string, 0, len(matchers))
	for _, m := range matchers {
		if m != "" {
			kept = append(kept, m)
		}
	}
	if len(kept) == 0 {
		return ""
	}
	return "{" + strings.Join(kept, ", ") + "}"
}

// sumBy aggregates expr with sum, by the given labels when there are any.
func sumBy(labels string, expr string) string {
	if labels == "" {
		return fmt.Sprintf("sum(%s)", expr)
	}
	return fmt.Sprintf("sum by (%s) (%s)", labels, expr)
}

func rate(metric, sel string) string {
	return fmt.Sprintf("rate(%s%s[%s])", metric, sel, rateWindow)
}

// sumRate is the per-second rate of a counter summed by labels.
func sumRate(labels, metric string, matchers ...string) string {
	return sumBy(labels, rate(metric, selector(matchers...)))
}

// serverErrorShare is the fraction of requests answered with a 5xx, by labels.
func serverErrorShare(labels string, matchers ...string) string {
	errorsOnly := append(append([]string{}, matchers...), serverErrors)
	return fmt.Sprintf("%s / %s", sumRate(labels, metricRequests, errorsOnly...), sumRate(labels, metricRequests, matchers...))
}

// latency is one quantile of the request duration histogram.
func latency(quantile string, matchers ...string) string {
	return fmt.Sprintf("histogram_quantile(%s, %s)", quantile, sumRate("le", metricRequestDuration, matchers...))
}

// latencyQueries draws p50, p90 and p99 of the request duration.
func latencyQueries(matchers ...string) []query {
	queries := make([]query, 0, len(latencyQuantiles))
	for _, q := range latencyQuantiles {
		queries = append(queries, query{expr: latency(q.quantile, matchers...), legend: q.legend})
	}
	return queries
}

func topK(expr string) string {
	return fmt.Sprintf("topk(10, %s)", expr)
}

// labelValues is Grafana's Prometheus variable query listing the values of label on the series of metric.
func labelValues(metric, label string, matchers ...string) string {
	return fmt.Sprintf("label_values(%s%s, %s)", metric, selector(matchers...), label)
}
