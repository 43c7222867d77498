package bundle

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/meshwright/meshwright/internal/istio"
)

func TestGenerateIsDeterministic(t *testing.T) {
	again, err := Generate(repoRoot, testOptions)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.EqualFunc(goodFiles, again, bytes.Equal) {
		t.Error("two runs with the same inputs produced different files")
	}
}

func TestVersionMustBeStrictSemver(t *testing.T) {
	for _, tc := range []struct {
		version string
		valid   bool
	}{
		{"0.1.0", true},
		{"1.2.3-rc.1", true},
		{"0.1", false},
		{"v0.1.0", false},
		{"x", false},
		{"", false},
	} {
		t.Run(tc.version+" is accepted only if strict semver", func(t *testing.T) {
			err := CheckVersion(tc.version)
			if tc.valid != (err == nil) {
				t.Fatalf("CheckVersion(%q) = %v", tc.version, err)
			}
			if err != nil && err.Error() != `VERSION must be semver (e.g. 0.1.0), got "`+tc.version+`"` {
				t.Errorf("message %q", err)
			}
			opts := testOptions
			opts.Version = tc.version
			if _, genErr := Generate(repoRoot, opts); !tc.valid && (genErr == nil || genErr.Error() != err.Error()) {
				t.Errorf("Generate with version %q: %v", tc.version, genErr)
			}
		})
	}
}

func decodeCSV(t *testing.T, files Files) *CSV {
	t.Helper()
	csv := &CSV{}
	if err := yaml.Unmarshal(files[csvFile], csv); err != nil {
		t.Fatal(err)
	}
	return csv
}

func TestCSVIsBuiltFromConfig(t *testing.T) {
	csv := decodeCSV(t, goodFiles)
	strategy := csv.Spec.Install.Spec
	if len(strategy.Deployments) != 1 || len(strategy.ClusterPermissions) != 1 || len(strategy.Permissions) != 1 {
		t.Fatalf("want one deployment and one permission entry of each kind, got %+v", strategy)
	}
	deployment := strategy.Deployments[0]
	account := deployment.Spec.Template.Spec.ServiceAccountName
	checks := map[string]bool{
		"the name is meshwright.v<version>":              csv.Metadata.Name == "meshwright.v0.1.0" && csv.Spec.Version == "0.1.0",
		"the Deployment keeps config/default's name":     deployment.Name == "meshwright-controller-manager",
		"the Deployment runs the given image":            deployment.Spec.Template.Spec.Containers[0].Image == testOptions.Image,
		"clusterPermissions go to the Deployment's SA":   strategy.ClusterPermissions[0].ServiceAccountName == account,
		"permissions (leader election) go to the SA":     strategy.Permissions[0].ServiceAccountName == account,
		"clusterPermissions include manager-role":        grants(strategy.ClusterPermissions[0].Rules, "apiextensions.k8s.io", "customresourcedefinitions"),
		"clusterPermissions include metrics-auth-role":   grants(strategy.ClusterPermissions[0].Rules, "authentication.k8s.io", "tokenreviews"),
		"permissions hold the leader-election Leases":    grants(strategy.Permissions[0].Rules, "coordination.k8s.io", "leases"),
		"only AllNamespaces is supported":                slices.Equal(supportedModes(csv), []string{"AllNamespaces"}),
		"skipRange covers every older version":           csv.Metadata.Annotations["olm.skipRange"] == "<0.1.0",
		"no replaces without --replaces":                 csv.Spec.Replaces == "",
		"both samples are examples":                      strings.Count(csv.Metadata.Annotations["alm-examples"], `"kind": "ServiceMesh"`) == 2,
		"the operator image is a related image":          slices.Contains(relatedImageRefs(csv), testOptions.Image),
		"the minimal sample is not renamed by kustomize": strings.Contains(csv.Metadata.Annotations["alm-examples"], `"name": "default"`),
	}
	for name, ok := range checks {
		if !ok {
			t.Errorf("%s: not so in the generated CSV", name)
		}
	}
	for name := range goodFiles {
		if strings.Contains(name, "serviceaccount") || strings.Contains(name, "binding") || strings.Contains(name, "namespace") {
			t.Errorf("%s: OLM creates the service account and bindings and picks the namespace itself", name)
		}
	}
}

func grants(rules []rbacv1.PolicyRule, group, resource string) bool {
	return slices.ContainsFunc(rules, func(r rbacv1.PolicyRule) bool {
		return slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource)
	})
}

func supportedModes(csv *CSV) []string {
	var out []string
	for _, m := range csv.Spec.InstallModes {
		if m.Supported {
			out = append(out, m.Type)
		}
	}
	return out
}

func relatedImageRefs(csv *CSV) []string {
	var out []string
	for _, r := range csv.Spec.RelatedImages {
		out = append(out, r.Image)
	}
	return out
}

func TestReplacesReachesTheCSVAndTheChannel(t *testing.T) {
	opts := testOptions
	opts.Replaces = "meshwright.v0.0.9"
	files, err := Generate(repoRoot, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeCSV(t, files).Spec.Replaces; got != opts.Replaces {
		t.Errorf("spec.replaces = %q", got)
	}
	if !bytes.Contains(files[CatalogFile], []byte("replaces: meshwright.v0.0.9")) {
		t.Error("the catalog's channel entries do not replace meshwright.v0.0.9")
	}
	opts.Replaces = "meshwright-0.0.9"
	if _, err := Generate(repoRoot, opts); err == nil {
		t.Error("a replaces that is not a CSV name was accepted")
	}
}

func TestRelatedImagesFollowTheVersionCatalog(t *testing.T) {
	catalog := &istio.Catalog{
		Hub:      "registry.example/istio",
		Images:   map[string]string{"pilot": "pilot", "proxy": "proxyv2", "newcomponent": "newimage"},
		Versions: []istio.Version{{Version: "1.40.1"}, {Version: "1.39.0"}},
	}
	var got []string
	for _, r := range relatedImages("op:v1", catalog) {
		got = append(got, r.Image)
	}
	for _, want := range []string{
		"op:v1",
		"registry.example/istio/newimage:1.40.1", "registry.example/istio/newimage:1.39.0",
		"registry.example/istio/pilot:1.39.0", "registry.example/istio/proxyv2:1.40.1",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("%s missing from %v", want, got)
		}
	}
	if len(got) != 1+3*2 {
		t.Errorf("want the operator plus 3 images × 2 versions, got %v", got)
	}
}

// objectsFromYAML decodes a multi-document stream into objects, for classify tests.
func objectsFromYAML(t *testing.T, stream string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, doc := range splitDocuments([]byte(stream)) {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &u.Object); err != nil {
			t.Fatal(err)
		}
		out = append(out, u)
	}
	return out
}

// RBAC is whatever config/rbac renders: roles bound to the operator's account become permissions, anything else is
// shipped, and kinds a bundle cannot carry are dropped and listed.
func TestClassifyFollowsTheBindings(t *testing.T) {
	objects := objectsFromYAML(t, `
apiVersion: apps/v1
kind: Deployment
metadata: {name: op, namespace: sys}
spec: {template: {spec: {serviceAccountName: op-sa, containers: [{name: m, image: i}]}}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: op-sa, namespace: sys}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: bound}
rules: [{apiGroups: [""], resources: [pods], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: bound-binding}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: bound}
subjects: [{kind: ServiceAccount, name: op-sa, namespace: sys}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: local, namespace: sys}
rules: [{apiGroups: [coordination.k8s.io], resources: [leases], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: local-binding, namespace: sys}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: local}
subjects: [{kind: ServiceAccount, name: op-sa, namespace: sys}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: shared}
rules: [{apiGroups: [""], resources: [nodes], verbs: [list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: shared-binding}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: shared}
subjects: [{kind: ServiceAccount, name: op-sa, namespace: sys}, {kind: Group, name: auditors}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: unbound}
rules: [{nonResourceURLs: [/metrics], verbs: [get]}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: guard}
---
apiVersion: v1
kind: Namespace
metadata: {name: sys}
`)
	p, err := classify(objects)
	if err != nil {
		t.Fatal(err)
	}
	names := func(objects []*unstructured.Unstructured) []string {
		var out []string
		for _, u := range sortedObjects(objects) {
			out = append(out, u.GetKind()+"/"+u.GetName())
		}
		return out
	}
	if got, want := names(p.shipped), []string{"ClusterRole/shared", "ClusterRole/unbound", "ClusterRoleBinding/shared-binding"}; !slices.Equal(got, want) {
		t.Errorf("shipped %v, want %v", got, want)
	}
	if got, want := names(p.dropped), []string{"ValidatingAdmissionPolicy/guard"}; !slices.Equal(got, want) {
		t.Errorf("dropped %v, want %v", got, want)
	}
	cluster := p.clusterPermissions["op-sa"]
	if len(cluster) != 2 || !grants(cluster, "", "pods") || !grants(cluster, "", "nodes") {
		t.Errorf("clusterPermissions %+v, want the rules of bound and shared", cluster)
	}
	if local := p.permissions["op-sa"]; len(local) != 1 || !grants(local, "coordination.k8s.io", "leases") {
		t.Errorf("permissions %+v, want the Role's rules", local)
	}
	description, err := renderDescription(p, istio.DefaultCatalog)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(description, "ValidatingAdmissionPolicy `guard`") {
		t.Error("the description does not list the dropped ValidatingAdmissionPolicy")
	}
}

func TestEveryWildcardNeedsAReason(t *testing.T) {
	for _, tc := range []struct {
		name string
		rule rbacv1.PolicyRule
		ok   bool
	}{
		{"every resource of an Istio group", rbacv1.PolicyRule{APIGroups: []string{"networking.istio.io"}, Resources: []string{"*"}, Verbs: []string{"get"}}, true},
		{"every resource of a Gateway API group", rbacv1.PolicyRule{APIGroups: []string{"gateway.networking.k8s.io"}, Resources: []string{"*"}, Verbs: []string{"get"}}, true},
		{"every verb on Ingress status", rbacv1.PolicyRule{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingresses/status"}, Verbs: []string{"*"}}, true},
		{"every resource of apps", rbacv1.PolicyRule{APIGroups: []string{"apps"}, Resources: []string{"*"}, Verbs: []string{"get"}}, false},
		{"every verb on Secrets", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"*"}}, false},
		{"every API group", rbacv1.PolicyRule{APIGroups: []string{"*"}, Resources: []string{"pods"}, Verbs: []string{"get"}}, false},
	} {
		t.Run(tc.name+" is justified only if a reason is written", func(t *testing.T) {
			lines, err := justifyWildcards([]rbacv1.PolicyRule{tc.rule})
			if tc.ok != (err == nil) {
				t.Fatalf("justifyWildcards: %v", err)
			}
			if tc.ok && (len(lines) != 1 || lines[0].Reason == "") {
				t.Errorf("want one justified line, got %+v", lines)
			}
		})
	}
}

func TestWriteReplacesGeneratedFilesAndKeepsTheRest(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "bundle/README.md", "hand-written")
	writeFile(t, root, ManifestsDir+"/stale_v1_configmap.yaml", "left over from an older config")
	if err := Write(root, goodFiles); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, root, "bundle/README.md"); got != "hand-written" {
		t.Errorf("README.md = %q", got)
	}
	diffs, err := Diff(root, goodFiles)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) != 0 {
		t.Errorf("after Write: %v", diffs)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(root, ".bundle-staging-*")); len(leftovers) != 0 {
		t.Errorf("staging left behind: %v", leftovers)
	}
}

func TestWriteRefusesAnInvalidBundleAndKeepsTheOldOne(t *testing.T) {
	root := t.TempDir()
	if err := Write(root, goodFiles); err != nil {
		t.Fatal(err)
	}
	broken := maps.Clone(goodFiles)
	broken[csvFile] = bytes.Replace(broken[csvFile], []byte("minKubeVersion: 1.30.0"), []byte("minKubeVersion: \"1.30\""), 1)
	err := Write(root, broken)
	if err == nil || !strings.Contains(err.Error(), "min-kube-version") {
		t.Fatalf("Write of a bundle with a bad minKubeVersion: %v", err)
	}
	if diffs, _ := Diff(root, goodFiles); len(diffs) != 0 {
		t.Errorf("the previous bundle was touched: %v", diffs)
	}
}

func TestDiffReportsChangedMissingAndExtraFiles(t *testing.T) {
	root := goodRoot(t)
	writeFile(t, root, servicePath, "edited by hand")
	remove(t, root, annotationsYML)
	writeFile(t, root, CatalogDir+"/extra.yaml", "{}")
	diffs, err := Diff(root, goodFiles)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		annotationsYML + " is missing",
		CatalogDir + "/extra.yaml is not generated any more",
		servicePath + " differs",
	}
	slices.Sort(diffs)
	slices.Sort(want)
	if !slices.Equal(diffs, want) {
		t.Errorf("Diff = %v, want %v", diffs, want)
	}
}

func TestOptionsRoundTripThroughTheBundle(t *testing.T) {
	opts := testOptions
	opts.Replaces = "meshwright.v0.0.9"
	opts.DefaultChannel = "stable"
	opts.BundleImage = "registry.example/meshwright-bundle:v0.1.0"
	files, err := Generate(repoRoot, opts)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for name, data := range files {
		writeFile(t, root, name, string(data))
	}
	got, err := OptionsFromBundle(root)
	if err != nil {
		t.Fatal(err)
	}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(opts)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("OptionsFromBundle = %s, want %s", gotJSON, wantJSON)
	}
	if _, err := os.Stat(filepath.Join(root, BundleDir, "README.md")); err == nil {
		t.Error("Generate wrote bundle/README.md, which is hand-written")
	}
}
