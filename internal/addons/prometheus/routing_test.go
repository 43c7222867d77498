package prometheus

import (
	"maps"
	"net"
	"slices"
	"strconv"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/discovery/kubernetes"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/prometheus/prometheus/util/strutil"
)

// A cluster described the way Prometheus's Kubernetes discovery sees it: pods, and the endpoints of Services.
type port struct {
	name   string
	number int
}

type pod struct {
	namespace, name, ip, phase string
	labels, annotations        map[string]string
	ports                      []port
}

type service struct {
	name  string
	ports []port
	pods  []pod
}

// metaLabels are the labels the pod role gives a target, one target per container port.
func (p pod) metaLabels() map[string]string {
	m := map[string]string{
		"__meta_kubernetes_namespace": p.namespace,
		"__meta_kubernetes_pod_name":  p.name,
		"__meta_kubernetes_pod_ip":    p.ip,
		"__meta_kubernetes_pod_phase": p.phase,
	}
	for k, v := range p.labels {
		m["__meta_kubernetes_pod_label_"+strutil.SanitizeLabelName(k)] = v
	}
	for k, v := range p.annotations {
		m["__meta_kubernetes_pod_annotation_"+strutil.SanitizeLabelName(k)] = v
	}
	return m
}

func (p pod) targets() []map[string]string {
	if len(p.ports) == 0 {
		m := p.metaLabels()
		m[model.AddressLabel] = p.ip
		return []map[string]string{m}
	}
	var out []map[string]string
	for _, pt := range p.ports {
		m := p.metaLabels()
		m["__meta_kubernetes_pod_container_port_name"] = pt.name
		m["__meta_kubernetes_pod_container_port_number"] = strconv.Itoa(pt.number)
		m[model.AddressLabel] = net.JoinHostPort(p.ip, strconv.Itoa(pt.number))
		out = append(out, m)
	}
	return out
}

// targets are what the endpointslice role gives: one per endpoint and Service port, with the pod's labels.
func (s service) targets() []map[string]string {
	var out []map[string]string
	for _, p := range s.pods {
		for _, pt := range s.ports {
			m := p.metaLabels()
			m["__meta_kubernetes_service_name"] = s.name
			m["__meta_kubernetes_endpointslice_port_name"] = pt.name
			m[model.AddressLabel] = net.JoinHostPort(p.ip, strconv.Itoa(pt.number))
			out = append(out, m)
		}
	}
	return out
}

const running = "Running"

var (
	istiodPod = pod{namespace: "istio-system", name: "istiod-5d9c", ip: "10.0.0.10", phase: running,
		labels:      map[string]string{"app": "istiod", "istio": "pilot", "istio.io/rev": "default"},
		annotations: map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "15014"},
		ports:       []port{{"", 8080}, {"", 15010}, {"", 15014}, {"", 15017}}}
	canaryPod = pod{namespace: "istio-system", name: "istiod-1-31-2-7f4b", ip: "10.0.0.11", phase: running,
		labels:      map[string]string{"app": "istiod", "istio": "istiod", "istio.io/rev": "1-31-2"},
		annotations: map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "15014"},
		ports:       []port{{"", 15010}, {"", 15014}}}
	istiodPorts = []port{{"grpc-xds", 15010}, {"https-dns", 15012}, {"https-webhook", 15017}, {"http-monitoring", 15014}}
	merged      = map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "15020",
		"prometheus.io/path": "/stats/prometheus"}
	sidecarPod = pod{namespace: "bookinfo", name: "reviews-v1-6c8f", ip: "10.0.1.5", phase: running,
		labels: map[string]string{"app": "reviews"}, annotations: merged,
		ports: []port{{"http", 9080}, {"http-envoy-prom", 15090}}}
	ipv6SidecarPod = pod{namespace: "bookinfo", name: "ratings-v1-2a7e", ip: "fd00::7", phase: running,
		labels: map[string]string{"app": "ratings"}, annotations: merged, ports: []port{{"http", 9080}}}
	gatewayPod = pod{namespace: "istio-ingress", name: "istio-ingressgateway-9b1c", ip: "10.0.2.3", phase: running,
		labels: map[string]string{"app": "istio-ingressgateway"}, annotations: merged,
		ports: []port{{"http2", 80}, {"https", 443}}}
	cniPod = pod{namespace: "kube-system", name: "istio-cni-node-x2k8", ip: "10.0.3.1", phase: running,
		labels: map[string]string{"k8s-app": "istio-cni-node"},
		annotations: map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "15014",
			"prometheus.io/path": "/metrics"},
		ports: []port{{"metrics", 15014}}}
	ztunnelPod = pod{namespace: "istio-system", name: "ztunnel-q8w2", ip: "10.0.3.2", phase: running,
		labels: map[string]string{"app": "ztunnel"},
		ports:  []port{{"ztunnel-stats", 15020}}}
	unannotatedPod = pod{namespace: "default", name: "nginx-1", ip: "10.0.4.1", phase: running,
		labels: map[string]string{"app": "nginx"}, ports: []port{{"http", 80}}}
	finishedPod = pod{namespace: "bookinfo", name: "migrate-1", ip: "10.0.1.9", phase: "Succeeded",
		annotations: merged}
)

// cluster lists the discovered targets of every role in a mesh with two istiod revisions, ztunnel and a CNI agent
// in kube-system.
func cluster() map[kubernetes.Role][]map[string]string {
	var podTargets []map[string]string
	for _, p := range []pod{istiodPod, canaryPod, sidecarPod, ipv6SidecarPod, gatewayPod, cniPod, ztunnelPod,
		unannotatedPod, finishedPod} {
		podTargets = append(podTargets, p.targets()...)
	}
	var sliceTargets []map[string]string
	for _, s := range []service{
		{name: "istiod", ports: istiodPorts, pods: []pod{istiodPod}},
		{name: "istiod-1-31-2", ports: istiodPorts, pods: []pod{canaryPod}},
		{name: "reviews", ports: []port{{"http", 9080}}, pods: []pod{sidecarPod}},
	} {
		sliceTargets = append(sliceTargets, s.targets()...)
	}
	return map[kubernetes.Role][]map[string]string{
		kubernetes.RolePod:           podTargets,
		kubernetes.RoleEndpointSlice: sliceTargets,
	}
}

// scraped returns, per job, the URLs Prometheus would scrape in that cluster: the job's discovered targets, with the
// labels the scrape manager sets before relabelling, through the job's relabel rules. Targets that end up with
// the same labels are one target, as in the scrape pool.
func scraped(t *testing.T, cfg *config.Config) map[string][]string {
	t.Helper()
	discovered := cluster()
	out := map[string][]string{}
	for _, sc := range cfg.ScrapeConfigs {
		urls := map[string]bool{}
		for _, target := range jobTargets(t, sc, discovered) {
			lb := labels.NewBuilder(labels.FromMap(target))
			lb.Set(model.JobLabel, sc.JobName)
			lb.Set(model.MetricsPathLabel, sc.MetricsPath)
			lb.Set(model.SchemeLabel, sc.Scheme)
			if !relabel.ProcessBuilder(lb, sc.RelabelConfigs...) {
				continue
			}
			urls[lb.Get(model.SchemeLabel)+"://"+lb.Get(model.AddressLabel)+lb.Get(model.MetricsPathLabel)] = true
		}
		out[sc.JobName] = slices.Sorted(maps.Keys(urls))
	}
	return out
}

// jobTargets returns what a job's discovery finds: static targets, or the role's targets in its namespaces.
func jobTargets(t *testing.T, sc *config.ScrapeConfig, discovered map[kubernetes.Role][]map[string]string) []map[string]string {
	var out []map[string]string
	for _, sd := range sc.ServiceDiscoveryConfigs {
		switch sd := sd.(type) {
		case discovery.StaticConfig:
			for _, group := range sd {
				for _, target := range group.Targets {
					out = append(out, map[string]string{model.AddressLabel: string(target[model.AddressLabel])})
				}
			}
		case *kubernetes.SDConfig:
			for _, target := range discovered[sd.Role] {
				names := sd.NamespaceDiscovery.Names
				if len(names) == 0 || slices.Contains(names, target["__meta_kubernetes_namespace"]) {
					out = append(out, target)
				}
			}
		default:
			t.Fatalf("job %s: unexpected discovery %T", sc.JobName, sd)
		}
	}
	return out
}

func TestEveryTargetIsScrapedOnceByTheRightJob(t *testing.T) {
	const (
		self        = "http://localhost:9090/metrics"
		istiod      = "http://10.0.0.10:15014/metrics"
		canary      = "http://10.0.0.11:15014/metrics"
		sidecar     = "http://10.0.1.5:15020/stats/prometheus"
		ipv6Sidecar = "http://[fd00::7]:15020/stats/prometheus"
		gateway     = "http://10.0.2.3:15020/stats/prometheus"
		cni         = "http://10.0.3.1:15014/metrics"
		ztunnel     = "http://10.0.3.2:15020/stats/prometheus"
	)
	for _, tc := range []struct {
		name string
		opts Options
		want map[string][]string
	}{
		{"without CNI, the CNI pod's own annotations get it scraped with the annotated pods",
			Options{IstioNamespace: "istio-system"},
			map[string][]string{JobPrometheus: {self}, JobIstiod: {istiod, canary},
				JobPods: {sidecar, gateway, cni, ipv6Sidecar}}},
		{"with CNI, the agent is scraped by its own job only",
			Options{IstioNamespace: "istio-system", CNINamespace: "kube-system"},
			map[string][]string{JobPrometheus: {self}, JobIstiod: {istiod, canary},
				JobPods: {sidecar, gateway, ipv6Sidecar}, JobCNI: {cni}}},
		{"in ambient mode, ztunnel's stats port is scraped by its own job",
			Options{IstioNamespace: "istio-system", CNINamespace: "kube-system", Ztunnel: true},
			map[string][]string{JobPrometheus: {self}, JobIstiod: {istiod, canary},
				JobPods: {sidecar, gateway, ipv6Sidecar}, JobCNI: {cni}, JobZtunnel: {ztunnel}}},
		{"a CNI agent in another namespace than the one configured is left to the annotated pods",
			Options{IstioNamespace: "istio-system", CNINamespace: "istio-cni"},
			map[string][]string{JobPrometheus: {self}, JobIstiod: {istiod, canary},
				JobPods: {sidecar, gateway, cni, ipv6Sidecar}, JobCNI: nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := scraped(t, load(t, tc.opts))
			for job := range tc.want {
				slices.Sort(tc.want[job])
			}
			if !maps.EqualFunc(got, tc.want, slices.Equal) {
				t.Fatalf("scraped %v,\nwant %v", got, tc.want)
			}
		})
	}
}

func TestTargetsAreLabelledByNamespacePodAndApp(t *testing.T) {
	cfg := load(t, Options{IstioNamespace: "istio-system", CNINamespace: "kube-system", Ztunnel: true})
	discovered := cluster()
	for _, tc := range []struct {
		job, pod string
		want     map[string]string
	}{
		{JobIstiod, canaryPod.name, map[string]string{"namespace": "istio-system", "app": "istiod", "revision": "1-31-2"}},
		{JobPods, sidecarPod.name, map[string]string{"namespace": "bookinfo", "app": "reviews"}},
		{JobCNI, cniPod.name, map[string]string{"namespace": "kube-system"}},
		{JobZtunnel, ztunnelPod.name, map[string]string{"namespace": "istio-system", "app": "ztunnel"}},
	} {
		t.Run("the "+tc.job+" job labels pod "+tc.pod, func(t *testing.T) {
			sc := cfg.ScrapeConfigs[slices.IndexFunc(cfg.ScrapeConfigs, func(sc *config.ScrapeConfig) bool {
				return sc.JobName == tc.job
			})]
			found := false
			for _, target := range jobTargets(t, sc, discovered) {
				lb := labels.NewBuilder(labels.FromMap(target))
				if target["__meta_kubernetes_pod_name"] != tc.pod || !relabel.ProcessBuilder(lb, sc.RelabelConfigs...) {
					continue
				}
				found = true
				tc.want["pod"] = tc.pod
				for name, value := range tc.want {
					if got := lb.Get(name); got != value {
						t.Errorf("label %s=%q, want %q", name, got, value)
					}
				}
			}
			if !found {
				t.Fatal("no target of that pod is kept")
			}
		})
	}
}
