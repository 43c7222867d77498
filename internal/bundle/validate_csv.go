package bundle

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"net/mail"
	"net/url"
	"slices"
	"strings"

	"github.com/blang/semver/v4"
	"github.com/google/go-containerregistry/pkg/name"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8svalidation "k8s.io/apimachinery/pkg/util/validation"
)

// The values OLM's tooling accepts for a CSV's listing fields.
var (
	validCapabilities = []string{"Basic Install", "Seamless Upgrades", "Full Lifecycle", "Deep Insights", "Auto Pilot"}
	validCategories   = []string{
		"AI/Machine Learning", "Application Runtime", "Big Data", "Cloud Provider", "Database", "Developer Tools",
		"Integration & Delivery", "Logging & Tracing", "Modernization & Migration", "Monitoring", "Networking",
		"Observability", "OpenShift Optional", "Security", "Storage", "Streaming & Messaging",
	}
	validIconTypes    = []string{"image/gif", "image/jpeg", "image/png", "image/svg+xml"}
	validInstallModes = []string{"OwnNamespace", "SingleNamespace", "MultiNamespace", "AllNamespaces"}
	// caseSensitiveAnnotations are annotation keys OLM reads with this exact case.
	caseSensitiveAnnotations = []string{
		"olm.skipRange", "olm.operatorGroup", "olm.operatorNamespace", "olm.targetNamespaces", "olm.providedAPIs",
	}
)

func (c *checker) checkCSV(b *loadedBundle) {
	c.checkCSVName(b)
	c.checkExamples(b)
	c.checkInstallModes(b)
	c.checkListing(b)
	c.checkInstallStrategy(b)
	c.checkOwnedCRDs(b)
	c.checkRelatedImages(b)
	c.checkAnnotationCase(b)
	c.checkPermissionsJustified(b)
}

func (c *checker) checkCSVName(b *loadedBundle) {
	csv, file := b.csv, b.csvFile
	errs := append(k8svalidation.IsDNS1123Subdomain(csv.Metadata.Name), k8svalidation.IsValidLabelValue(csv.Metadata.Name)...)
	if len(errs) > 0 {
		c.add("csv-name", file, "metadata.name %q: %s", csv.Metadata.Name, strings.Join(errs, "; "))
	}
	nameVersion, err := versionFromCSVName(csv.Metadata.Name)
	if err != nil {
		c.add("csv-name", file, "metadata.name: %v", err)
	}
	specVersion, verr := semver.Parse(csv.Spec.Version)
	switch {
	case verr != nil:
		c.add("csv-version", file, "spec.version %q is not semver", csv.Spec.Version)
	case err == nil && !specVersion.Equals(nameVersion):
		c.add("csv-version", file, "spec.version %s differs from the version in metadata.name %q", csv.Spec.Version, csv.Metadata.Name)
	}
	if csv.Spec.Replaces != "" {
		if _, err := versionFromCSVName(csv.Spec.Replaces); err != nil {
			c.add("csv-replaces", file, "spec.replaces: %v", err)
		}
	}
}

// checkExamples requires alm-examples to be a JSON array of custom resources of owned CRDs, one at least per CRD.
func (c *checker) checkExamples(b *loadedBundle) {
	raw, ok := b.csv.Metadata.Annotations["alm-examples"]
	if !ok {
		c.add("alm-examples", b.csvFile, "the alm-examples annotation is missing")
		return
	}
	var examples []unstructured.Unstructured
	var objects []map[string]any
	if err := json.Unmarshal([]byte(raw), &objects); err != nil {
		c.add("alm-examples", b.csvFile, "alm-examples is not a JSON array of objects: %v", err)
		return
	}
	for _, o := range objects {
		examples = append(examples, unstructured.Unstructured{Object: o})
	}
	owned := ownedGVKs(b.csv)
	covered := map[schema.GroupVersionKind]bool{}
	for _, e := range examples {
		gvk := e.GroupVersionKind()
		if !owned[gvk] {
			c.add("alm-examples", b.csvFile, "example %q is a %s, which is not an owned CRD", e.GetName(), gvk)
		}
		covered[gvk] = true
	}
	for gvk := range owned {
		if !covered[gvk] {
			c.add("alm-examples-coverage", b.csvFile, "owned CRD %s has no example in alm-examples", gvk)
		}
	}
}

// ownedGVKs takes each owned CRD's group from its name after the first dot, as OLM does.
func ownedGVKs(csv *CSV) map[schema.GroupVersionKind]bool {
	out := map[schema.GroupVersionKind]bool{}
	for _, o := range csv.Spec.CustomResourceDefinitions.Owned {
		_, group, _ := strings.Cut(o.Name, ".")
		out[schema.GroupVersionKind{Group: group, Version: o.Version, Kind: o.Kind}] = true
	}
	return out
}

func (c *checker) checkInstallModes(b *loadedBundle) {
	modes := b.csv.Spec.InstallModes
	if len(modes) == 0 {
		c.add("install-modes", b.csvFile, "spec.installModes is empty")
		return
	}
	seen := map[string]bool{}
	supported := false
	for _, m := range modes {
		if !slices.Contains(validInstallModes, m.Type) {
			c.add("install-modes", b.csvFile, "install mode %q is not one of %v", m.Type, validInstallModes)
		}
		if seen[m.Type] {
			c.add("install-modes", b.csvFile, "install mode %s is listed twice", m.Type)
		}
		seen[m.Type] = true
		supported = supported || m.Supported
	}
	if !supported {
		c.add("install-modes", b.csvFile, "no install mode is supported")
	}
}

// checkListing covers the fields OperatorHub shows: version, display name, provider, maintainers, links, icon,
// capabilities and categories.
func (c *checker) checkListing(b *loadedBundle) {
	csv, file := b.csv, b.csvFile
	if _, err := semver.Parse(csv.Spec.MinKubeVersion); err != nil {
		c.add("min-kube-version", file, "spec.minKubeVersion %q is not strict semver (e.g. 1.30.0)", csv.Spec.MinKubeVersion)
	}
	if strings.TrimSpace(csv.Spec.DisplayName) == "" {
		c.add("display-name", file, "spec.displayName is empty")
	}
	if strings.TrimSpace(csv.Spec.Provider.Name) == "" {
		c.add("provider", file, "spec.provider.name is empty")
	}
	for _, m := range csv.Spec.Maintainers {
		if _, err := mail.ParseAddress(m.Email); m.Name == "" || err != nil {
			c.add("maintainers", file, "maintainer %q <%s> needs a name and a valid email", m.Name, m.Email)
		}
	}
	for _, l := range csv.Spec.Links {
		if _, err := url.ParseRequestURI(l.URL); l.Name == "" || err != nil {
			c.add("links", file, "link %q (%s) needs a name and a valid URL", l.Name, l.URL)
		}
	}
	c.checkIcon(b)
	annotations := csv.Metadata.Annotations
	if capability := annotations["capabilities"]; !slices.Contains(validCapabilities, capability) {
		c.add("capabilities", file, "capabilities %q is not one of %v", capability, validCapabilities)
	}
	if list, ok := annotations["categories"]; ok {
		for _, category := range strings.Split(list, ",") {
			if !slices.Contains(validCategories, strings.TrimSpace(category)) {
				c.add("categories", file, "category %q is not a standard OperatorHub category", category)
			}
		}
	}
}

func (c *checker) checkIcon(b *loadedBundle) {
	icons := b.csv.Spec.Icon
	if len(icons) != 1 {
		c.add("icon", b.csvFile, "spec.icon has %d entries, want exactly one", len(icons))
		return
	}
	data, err := base64.StdEncoding.DecodeString(icons[0].Data)
	if err != nil || len(data) == 0 {
		c.add("icon", b.csvFile, "spec.icon base64data is empty or not base64 (%v)", err)
	}
	if !slices.Contains(validIconTypes, icons[0].MediaType) {
		c.add("icon", b.csvFile, "spec.icon mediatype %q is not one of %v", icons[0].MediaType, validIconTypes)
	}
}

// checkInstallStrategy requires the deployment strategy with named Deployments whose containers request CPU and
// memory, and permissions granted only to those Deployments' service accounts.
func (c *checker) checkInstallStrategy(b *loadedBundle) {
	install, file := b.csv.Spec.Install, b.csvFile
	if install.Strategy != "deployment" {
		c.add("install-strategy", file, "spec.install.strategy is %q, want deployment", install.Strategy)
	}
	if len(install.Spec.Deployments) == 0 {
		c.add("install-strategy", file, "spec.install.spec.deployments is empty")
	}
	accounts := map[string]bool{}
	for _, d := range install.Spec.Deployments {
		if d.Name == "" {
			c.add("install-strategy", file, "a deployment has no name")
		}
		accounts[d.Spec.Template.Spec.ServiceAccountName] = true
		for _, ctr := range d.Spec.Template.Spec.Containers {
			requests := ctr.Resources.Requests
			if requests.Cpu().IsZero() || requests.Memory().IsZero() {
				c.add("resource-requests", file, "deployment %s container %s has no cpu and memory requests", d.Name, ctr.Name)
			}
		}
	}
	for _, p := range slices.Concat(install.Spec.Permissions, install.Spec.ClusterPermissions) {
		if !accounts[p.ServiceAccountName] {
			c.add("install-strategy", file, "permissions for service account %q, which no deployment uses", p.ServiceAccountName)
		}
	}
}

// checkOwnedCRDs requires the owned CRDs and the CRD files to match one to one, by group, version and kind, and
// every owned CRD to be described.
func (c *checker) checkOwnedCRDs(b *loadedBundle) {
	inFiles := map[schema.GroupVersionKind]string{}
	filesGK := map[schema.GroupKind]bool{}
	for _, f := range b.crds {
		for _, v := range f.crd.Spec.Versions {
			gvk := schema.GroupVersionKind{Group: f.crd.Spec.Group, Version: v.Name, Kind: f.crd.Spec.Names.Kind}
			inFiles[gvk] = f.file
			filesGK[gvk.GroupKind()] = true
		}
	}
	owned := ownedGVKs(b.csv)
	ownedGK := map[schema.GroupKind]bool{}
	for gvk := range owned {
		ownedGK[gvk.GroupKind()] = true
		if _, ok := inFiles[gvk]; !ok {
			c.add("owned-crds", b.csvFile, "owned CRD %s has no CRD file in manifests/", gvk)
		}
	}
	for gk := range filesGK {
		if !ownedGK[gk] {
			c.add("owned-crds", b.csvFile, "CRD %s is in manifests/ but not owned by the CSV", gk)
		}
	}
	for _, o := range b.csv.Spec.CustomResourceDefinitions.Owned {
		if strings.TrimSpace(o.Description) == "" {
			c.add("crd-descriptions", b.csvFile, "owned CRD %s %s has no description", o.Name, o.Version)
		}
	}
}

func (c *checker) checkRelatedImages(b *loadedBundle) {
	for i, img := range b.csv.Spec.RelatedImages {
		if _, err := name.ParseReference(img.Image); err != nil {
			c.add("related-images", b.csvFile, "spec.relatedImages[%d] %q is not an image reference: %v", i, img.Image, err)
		}
	}
}

func (c *checker) checkAnnotationCase(b *loadedBundle) {
	for key := range b.csv.Metadata.Annotations {
		for _, want := range caseSensitiveAnnotations {
			if strings.EqualFold(key, want) && key != want {
				c.add("annotation-case", b.csvFile, "annotation %s must be spelled %s", key, want)
			}
		}
	}
}

// checkPermissionsJustified: permission to create CRDs is a warning in OLM's tooling unless justified, and a
// wildcard is a reviewer's first question; the description must answer both.
func (c *checker) checkPermissionsJustified(b *loadedBundle) {
	strategy := b.csv.Spec.Install.Spec
	description := b.csv.Spec.Description
	for _, p := range slices.Concat(strategy.Permissions, strategy.ClusterPermissions) {
		for _, rule := range p.Rules {
			if createsCRDs(rule) && !strings.Contains(description, CRDCreationMarker) {
				c.add("crd-permission", b.csvFile, "service account %s may create CustomResourceDefinitions but the description has no %q section",
					p.ServiceAccountName, CRDCreationMarker)
			}
			for _, missing := range unexplainedWildcards(rule, description) {
				c.add("rbac-wildcards", b.csvFile, "service account %s holds %s, which the description does not explain", p.ServiceAccountName, missing)
			}
		}
	}
}

func createsCRDs(rule rbacv1.PolicyRule) bool {
	groupMatches := slices.Contains(rule.APIGroups, "apiextensions.k8s.io") || slices.Contains(rule.APIGroups, "*")
	resourceMatches := slices.Contains(rule.Resources, "customresourcedefinitions") || slices.Contains(rule.Resources, "*")
	verbMatches := slices.ContainsFunc(rule.Verbs, func(v string) bool { return v == "create" || v == "patch" || v == "*" })
	return groupMatches && resourceMatches && verbMatches
}

// unexplainedWildcards names each wildcard of a rule whose group (resource wildcards) or "<group>/<resource>"
// (verb wildcards) is not quoted in the description.
func unexplainedWildcards(rule rbacv1.PolicyRule, description string) []string {
	var missing []string
	if slices.Contains(rule.Resources, "*") {
		for _, group := range rule.APIGroups {
			if !strings.Contains(description, "`"+groupName(group)+"`") {
				missing = append(missing, "every resource in "+groupName(group))
			}
		}
	}
	if slices.Contains(rule.Verbs, "*") {
		for _, key := range verbWildcardKeys(rule) {
			if !strings.Contains(description, "`"+key+"`") {
				missing = append(missing, "every verb on "+key)
			}
		}
	}
	return missing
}

// compressedLen is len(base64(gzip(data))), the measure OLM's size limit uses.
func compressedLen(data []byte) int {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(data) // writes to a bytes.Buffer do not fail
	_ = zw.Close()
	return base64.StdEncoding.EncodedLen(buf.Len())
}
