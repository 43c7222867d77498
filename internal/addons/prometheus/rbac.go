package prometheus

import (
	rbacv1 "k8s.io/api/rbac/v1"
)

// readOnly is what Kubernetes service discovery does with every kind it watches. A new slice each call, so that
// callers may modify the rules they get.
func readOnly() []string { return []string{"get", "list", "watch"} }

// ClusterRoleRules returns the rules Prometheus's ServiceAccount needs for the jobs Config writes, whatever the
// Options: the pod role watches pods in every namespace (sidecars live anywhere), and the endpointslice role watches
// EndpointSlices and the Services and pods behind them. Nothing else is granted: no job discovers nodes, reads the
// legacy Endpoints API, or scrapes an endpoint behind Kubernetes authorization (such as the API server's /metrics).
func ClusterRoleRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods", "services"}, Verbs: readOnly()},
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: readOnly()},
	}
}
