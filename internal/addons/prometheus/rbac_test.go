package prometheus

import (
	"maps"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/discovery/kubernetes"
)

// watchedBy is what Prometheus's Kubernetes discovery lists and watches for each role (discovery/kubernetes: the
// endpointslice role follows each slice to its Service and pods).
var watchedBy = map[kubernetes.Role][]string{
	kubernetes.RolePod:           {"/pods"},
	kubernetes.RoleEndpointSlice: {"discovery.k8s.io/endpointslices", "/services", "/pods"},
}

func TestClusterRoleGrantsExactlyWhatTheJobsWatch(t *testing.T) {
	// The ambient case holds every job, so every role the package uses.
	cfg := load(t, Options{IstioNamespace: "istio-system", CNINamespace: "kube-system", Ztunnel: true})
	needed := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		for _, sd := range sc.ServiceDiscoveryConfigs {
			if k, ok := sd.(*kubernetes.SDConfig); ok {
				resources, known := watchedBy[k.Role]
				if !known {
					t.Fatalf("job %s uses role %s, which this test does not know the watches of", sc.JobName, k.Role)
				}
				for _, r := range resources {
					needed[r] = true
				}
			}
		}
	}
	granted := map[string]bool{}
	for _, rule := range ClusterRoleRules() {
		if len(rule.NonResourceURLs) > 0 || len(rule.ResourceNames) > 0 {
			t.Errorf("rule %+v: want plain resource rules", rule)
		}
		if !slices.Equal(rule.Verbs, []string{"get", "list", "watch"}) {
			t.Errorf("rule %+v: verbs %v, want get, list, watch only", rule, rule.Verbs)
		}
		for _, group := range rule.APIGroups {
			for _, resource := range rule.Resources {
				granted[group+"/"+resource] = true
			}
		}
	}
	if !maps.Equal(granted, needed) {
		t.Fatalf("granted %v, want %v", slices.Sorted(maps.Keys(granted)), slices.Sorted(maps.Keys(needed)))
	}
}

func TestClusterRoleRulesAreFreshOnEveryCall(t *testing.T) {
	first := ClusterRoleRules()
	first[0].Verbs[0] = "delete"
	if ClusterRoleRules()[0].Verbs[0] != "get" {
		t.Fatal("changing returned rules changed the next call's")
	}
}
