package bundle

import (
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshwright/meshwright/internal/istio"
)

//go:embed icon.svg
var iconSVG []byte

// The CSV's listing data: who makes Meshwright and where to find it.
const (
	displayName      = "Meshwright"
	shortDescription = "Installs and operates an Istio service mesh from one ServiceMesh resource: control plane, " +
		"certificates, drift repair and upgrades by revision."
	repositoryURL = "https://github.com/meshwright/meshwright"
	capabilities  = "Seamless Upgrades"
	categories    = "Networking, Security"
	maturity      = "alpha"
)

var (
	keywords    = []string{"service mesh", "istio", "mtls", "envoy", "gateway", "networking", "security"}
	maintainers = []Maintainer{{Name: "Meshwright maintainers", Email: "maintainers@meshwright.dev"}}
	provider    = AppLink{Name: "Meshwright", URL: repositoryURL}
	links       = []AppLink{
		{Name: "Source code", URL: repositoryURL},
		{Name: "Documentation", URL: repositoryURL + "#readme"},
		{Name: "Istio", URL: "https://istio.io"},
	}
)

// installModes: the operator reconciles a cluster-scoped ServiceMesh and installs Istio cluster-wide, so it only
// works watching all namespaces.
var installModes = []InstallMode{
	{Type: "OwnNamespace", Supported: false},
	{Type: "SingleNamespace", Supported: false},
	{Type: "MultiNamespace", Supported: false},
	{Type: "AllNamespaces", Supported: true},
}

// managedByLabel is set by config/default's labels transformer; under OLM it would be false.
const managedByLabel = "app.kubernetes.io/managed-by"

func buildCSV(p *parts, opts Options) (*CSV, error) {
	examples, err := almExamples(p.samples)
	if err != nil {
		return nil, err
	}
	owned, err := ownedCRDs(p.crds)
	if err != nil {
		return nil, err
	}
	description, err := renderDescription(p, istio.DefaultCatalog)
	if err != nil {
		return nil, err
	}
	annotations := map[string]string{
		"alm-examples":   examples,
		"capabilities":   capabilities,
		"categories":     categories,
		"containerImage": opts.Image,
		"description":    shortDescription,
		"olm.skipRange":  "<" + opts.Version,
		"repository":     repositoryURL,
		"support":        maintainers[0].Name,
		// Consoles offer this namespace when installing; it is the one config/default installs into.
		"operatorframework.io/suggested-namespace": p.deployments[0].Namespace,
	}
	return &CSV{
		APIVersion: csvAPIVersion,
		Kind:       csvKind,
		Metadata:   CSVMetadata{Name: CSVName(opts.Version), Annotations: annotations},
		Spec: CSVSpec{
			DisplayName:               displayName,
			Description:               description,
			Version:                   opts.Version,
			Replaces:                  opts.Replaces,
			Maturity:                  maturity,
			MinKubeVersion:            MinKubeVersion,
			Keywords:                  keywords,
			Maintainers:               maintainers,
			Provider:                  provider,
			Links:                     links,
			Icon:                      []Icon{{Data: base64.StdEncoding.EncodeToString(iconSVG), MediaType: "image/svg+xml"}},
			InstallModes:              installModes,
			Install:                   installStrategy(p),
			CustomResourceDefinitions: CustomResourceDefinitions{Owned: owned},
			RelatedImages:             relatedImages(opts.Image, istio.DefaultCatalog),
		},
	}, nil
}

func installStrategy(p *parts) NamedInstallStrategy {
	strategy := StrategyDetailsDeployment{
		Permissions:        permissionList(p.permissions),
		ClusterPermissions: permissionList(p.clusterPermissions),
	}
	for _, d := range p.deployments {
		strategy.Deployments = append(strategy.Deployments, StrategyDeploymentSpec{
			Name:  d.Name,
			Label: withoutManagedBy(d.Labels),
			Spec:  d.Spec,
		})
	}
	return NamedInstallStrategy{Strategy: "deployment", Spec: strategy}
}

func permissionList(byAccount map[string][]rbacv1.PolicyRule) []StrategyPermissions {
	var out []StrategyPermissions
	for _, account := range slices.Sorted(maps.Keys(byAccount)) {
		out = append(out, StrategyPermissions{ServiceAccountName: account, Rules: byAccount[account]})
	}
	return out
}

// almExamples is the JSON array of the samples, in config/samples' order.
func almExamples(samples []*unstructured.Unstructured) (string, error) {
	objects := make([]map[string]any, 0, len(samples))
	for _, s := range samples {
		objects = append(objects, s.Object)
	}
	data, err := json.MarshalIndent(objects, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encoding alm-examples: %w", err)
	}
	return string(data), nil
}

// relatedImages lists the operator image and every image of every catalog version, so a mirror for a
// disconnected cluster holds whatever a ServiceMesh may select. A component added to versions.yaml's images joins
// the list by itself.
func relatedImages(operatorImage string, c *istio.Catalog) []RelatedImage {
	images := []RelatedImage{{Name: PackageName, Image: operatorImage}}
	components := slices.Sorted(maps.Keys(c.Images))
	seen := map[string]bool{}
	for _, v := range c.Versions {
		for _, component := range components {
			images = append(images, RelatedImage{
				Name:  "istio-" + component + "-" + v.RevisionSuffix(),
				Image: c.Image(component, v),
			})
		}
		for _, addon := range slices.Sorted(maps.Keys(v.Addons)) {
			if image := v.Addons[addon]; !seen[image] {
				seen[image] = true
				images = append(images, RelatedImage{Name: "addon-" + addon + "-" + v.RevisionSuffix(), Image: image})
			}
		}
	}
	return images
}

func withoutManagedBy(labels map[string]string) map[string]string {
	if labels[managedByLabel] != "kustomize" {
		return labels
	}
	out := maps.Clone(labels)
	delete(out, managedByLabel)
	return out
}

// sortedObjects orders objects by kind then name, so manifests/ and the catalog do not depend on render order.
func sortedObjects(objects []*unstructured.Unstructured) []*unstructured.Unstructured {
	out := slices.Clone(objects)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].GetKind() != out[j].GetKind() {
			return out[i].GetKind() < out[j].GetKind()
		}
		return out[i].GetName() < out[j].GetName()
	})
	return out
}
