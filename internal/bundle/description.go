package bundle

import (
	_ "embed"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/template"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/meshwright/meshwright/internal/istio"
)

// CRDCreationMarker heads the CSV description's section that justifies the operator's permission to create
// CustomResourceDefinitions; Validate requires it whenever the CSV grants that permission.
const CRDCreationMarker = "Why Meshwright creates CustomResourceDefinitions"

//go:embed description.md.tmpl
var descriptionTemplate string

var descriptionTmpl = template.Must(template.New("description").Parse(descriptionTemplate))

// Why the operator's ClusterRole holds wildcards. Every wildcard config/rbac renders must match one of these, or
// generation fails: a new wildcard needs a reason written here before it can ship.
const (
	istioGroupsReason = "istiod's ClusterRole reads every kind in Istio's configuration API groups, including kinds a " +
		"newer Istio adds, and Meshwright must hold what it grants (see above). Meshwright only reads them."
	gatewayGroupsReason = "istiod implements the Kubernetes Gateway API, and its ClusterRole reads every kind in the " +
		"Gateway API groups, experimental ones included, so Meshwright must hold the same read access."
)

// gatewayAPIGroups are the Gateway API's groups, past and present, that istiod reads.
var gatewayAPIGroups = map[string]bool{
	"gateway.networking.k8s.io":   true,
	"gateway.networking.x-k8s.io": true,
	"networking.x-k8s.io":         true,
}

// verbWildcardReasons justify `verbs: ["*"]`, by "<group>/<resource>".
var verbWildcardReasons = map[string]string{
	"networking.k8s.io/ingresses/status": "istiod's ClusterRole grants every verb on Ingress status, which istiod " +
		"updates with its gateways' addresses, so Meshwright must hold it to create that ClusterRole. Meshwright " +
		"itself never writes Ingress status.",
}

// wildcardLine is one bullet of the description's wildcard section.
type wildcardLine struct {
	Rule   string
	Reason string
}

type descriptionData struct {
	Versions     string
	ExampleMinor string
	Wildcards    []wildcardLine
	CRDMarker    string
	Dropped      []string
}

func renderDescription(p *parts, c *istio.Catalog) (string, error) {
	var rules []rbacv1.PolicyRule
	for _, account := range slices.Sorted(maps.Keys(p.clusterPermissions)) {
		rules = append(rules, p.clusterPermissions[account]...)
	}
	for _, account := range slices.Sorted(maps.Keys(p.permissions)) {
		rules = append(rules, p.permissions[account]...)
	}
	wildcards, err := justifyWildcards(rules)
	if err != nil {
		return "", err
	}
	data := descriptionData{Wildcards: wildcards, CRDMarker: CRDCreationMarker}
	var versions []string
	for _, v := range c.Versions {
		versions = append(versions, v.Version)
	}
	if len(versions) == 0 {
		return "", fmt.Errorf("the version catalog lists no Istio version")
	}
	data.Versions = strings.Join(versions, ", ")
	data.ExampleMinor = c.Versions[0].Minor()
	for _, u := range sortedObjects(p.dropped) {
		data.Dropped = append(data.Dropped, fmt.Sprintf("%s `%s`", u.GetKind(), u.GetName()))
	}
	var out strings.Builder
	if err := descriptionTmpl.Execute(&out, data); err != nil {
		return "", fmt.Errorf("rendering the CSV description: %w", err)
	}
	return out.String(), nil
}

// justifyWildcards lists every wildcard of the rules with its reason, and fails on one that has none.
func justifyWildcards(rules []rbacv1.PolicyRule) ([]wildcardLine, error) {
	var lines []wildcardLine
	for _, rule := range rules {
		if slices.Contains(rule.APIGroups, "*") {
			return nil, fmt.Errorf("a rule grants %v on every API group; Meshwright's RBAC must name its groups", rule.Verbs)
		}
		if slices.Contains(rule.Resources, "*") {
			groupLines, err := resourceWildcardLines(rule)
			if err != nil {
				return nil, err
			}
			lines = append(lines, groupLines...)
		}
		if slices.Contains(rule.Verbs, "*") {
			for _, key := range verbWildcardKeys(rule) {
				reason, ok := verbWildcardReasons[key]
				if !ok {
					return nil, fmt.Errorf("`verbs: [\"*\"]` on %s has no reason in internal/bundle/description.go", key)
				}
				lines = append(lines, wildcardLine{Rule: fmt.Sprintf("every verb on `%s`", key), Reason: reason})
			}
		}
	}
	return lines, nil
}

func resourceWildcardLines(rule rbacv1.PolicyRule) ([]wildcardLine, error) {
	var istioGroups, gatewayGroups []string
	for _, group := range rule.APIGroups {
		switch {
		case strings.HasSuffix(group, ".istio.io"):
			istioGroups = append(istioGroups, group)
		case gatewayAPIGroups[group]:
			gatewayGroups = append(gatewayGroups, group)
		default:
			return nil, fmt.Errorf("`resources: [\"*\"]` on group %q has no reason in internal/bundle/description.go", group)
		}
	}
	verbs := strings.Join(rule.Verbs, ", ")
	var lines []wildcardLine
	if len(istioGroups) > 0 {
		lines = append(lines, wildcardLine{Rule: fmt.Sprintf("every resource (%s) in %s", verbs, codeList(istioGroups)), Reason: istioGroupsReason})
	}
	if len(gatewayGroups) > 0 {
		lines = append(lines, wildcardLine{Rule: fmt.Sprintf("every resource (%s) in %s", verbs, codeList(gatewayGroups)), Reason: gatewayGroupsReason})
	}
	return lines, nil
}

// verbWildcardKeys are "<group>/<resource>" for every group and resource of a rule; "core" stands for "".
func verbWildcardKeys(rule rbacv1.PolicyRule) []string {
	var keys []string
	for _, group := range rule.APIGroups {
		for _, resource := range rule.Resources {
			keys = append(keys, groupName(group)+"/"+resource)
		}
	}
	return keys
}

func groupName(group string) string {
	if group == "" {
		return "core"
	}
	return group
}

func codeList(items []string) string {
	quoted := make([]string, len(items))
	for i, item := range items {
		quoted[i] = "`" + item + "`"
	}
	return strings.Join(quoted, ", ")
}
