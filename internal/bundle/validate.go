package bundle

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Problem is one broken rule of the OLM bundle conventions (shared/DELIVERY.md). Rule is a short stable name the
// tests match on; every check reports under its own rule.
type Problem struct {
	Rule    string
	File    string
	Message string
}

func (p Problem) Error() string {
	if p.File == "" {
		return fmt.Sprintf("[%s] %s", p.Rule, p.Message)
	}
	return fmt.Sprintf("[%s] %s: %s", p.Rule, p.File, p.Message)
}

// checker collects problems; checks never stop at the first one, so one run lists everything to fix.
type checker struct {
	problems []Problem
}

func (c *checker) add(rule, file, format string, args ...any) {
	c.problems = append(c.problems, Problem{Rule: rule, File: file, Message: fmt.Sprintf(format, args...)})
}

// manifest is one parsed file of manifests/.
type manifest struct {
	file   string
	object *unstructured.Unstructured
}

// loadedBundle is a bundle directory as far as it could be parsed.
type loadedBundle struct {
	dir         string
	annotations map[string]string
	// annotationsRead is false when annotations.yaml is missing or unparsable, problems already reported.
	annotationsRead bool
	manifests       []manifest
	csv             *CSV
	csvFile         string
	crds            []crdFile
}

type crdFile struct {
	file string
	crd  *apiextensionsv1.CustomResourceDefinition
}

// Validate checks a registry+v1 bundle directory and the Dockerfile that builds its image against every rule of
// shared/DELIVERY.md's "OLM bundle (registry+v1)" section, with the warnings listed there treated as errors.
func Validate(bundleDir, dockerfile string) []Problem {
	c := &checker{}
	b := c.load(bundleDir)
	c.checkAnnotations(b)
	c.checkDockerfile(dockerfile, b.annotations)
	c.checkKinds(b)
	c.checkRemovedAPIs(b)
	c.checkCRDs(b)
	c.checkSize(bundleDir)
	if b.csv != nil {
		c.checkCSV(b)
	}
	return c.problems
}

func (c *checker) load(dir string) *loadedBundle {
	b := &loadedBundle{dir: dir}
	for _, required := range []string{"manifests", "metadata/annotations.yaml", "tests/scorecard/config.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, required)); err != nil {
			c.add("layout", required, "missing: a registry+v1 bundle has manifests/, metadata/annotations.yaml and tests/scorecard/config.yaml")
		}
	}
	c.loadAnnotations(b)
	entries, err := os.ReadDir(filepath.Join(dir, "manifests"))
	if err != nil {
		return b
	}
	for _, e := range entries {
		file := "manifests/" + e.Name()
		if e.IsDir() {
			c.add("layout", file, "manifests/ holds files only")
			continue
		}
		c.loadManifest(b, file)
	}
	if b.csv == nil {
		c.add("csv-count", "manifests/", "no ClusterServiceVersion")
	}
	return b
}

func (c *checker) loadAnnotations(b *loadedBundle) {
	data, err := os.ReadFile(filepath.Join(b.dir, "metadata/annotations.yaml"))
	if err != nil {
		return
	}
	var doc struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		c.add("annotations", "metadata/annotations.yaml", "not a map of annotations: %v", err)
		return
	}
	b.annotations, b.annotationsRead = doc.Annotations, true
}

func (c *checker) loadManifest(b *loadedBundle, file string) {
	data, err := os.ReadFile(filepath.Join(b.dir, file))
	if err != nil {
		c.add("manifest-file", file, "unreadable: %v", err)
		return
	}
	docs := splitDocuments(data)
	if len(docs) != 1 {
		c.add("manifest-file", file, "holds %d objects; a bundle has one object per file", len(docs))
		return
	}
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(docs[0], &u.Object); err != nil || u.GetKind() == "" || u.GetAPIVersion() == "" {
		c.add("manifest-file", file, "not a Kubernetes object with apiVersion and kind (%v)", err)
		return
	}
	b.manifests = append(b.manifests, manifest{file: file, object: u})
	switch u.GetKind() {
	case csvKind:
		if b.csv != nil {
			c.add("csv-count", file, "a second ClusterServiceVersion (the first is %s)", b.csvFile)
			return
		}
		csv := &CSV{}
		if err := yaml.Unmarshal(docs[0], csv); err != nil {
			c.add("manifest-file", file, "not a ClusterServiceVersion: %v", err)
			return
		}
		b.csv, b.csvFile = csv, file
	case "CustomResourceDefinition":
		if u.GetAPIVersion() != apiextensionsv1.SchemeGroupVersion.String() {
			return // the removed-api check reports it
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(docs[0], crd); err != nil {
			c.add("manifest-file", file, "not a CustomResourceDefinition: %v", err)
			return
		}
		b.crds = append(b.crds, crdFile{file: file, crd: crd})
	}
}

// splitDocuments returns the non-empty YAML documents of a stream.
func splitDocuments(data []byte) [][]byte {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			return append(docs, doc)
		}
		if j, err := yaml.YAMLToJSON(doc); err == nil && string(j) == "null" {
			continue // only comments or whitespace
		}
		docs = append(docs, doc)
	}
}

// Required bundle annotations and their fixed values ("" when any non-empty value will do).
var requiredAnnotations = []struct{ key, value string }{
	{annotationMediatype, "registry+v1"},
	{annotationManifests, "manifests/"},
	{annotationMetadata, "metadata/"},
	{annotationPackage, ""},
	{annotationChannels, ""},
}

func (c *checker) checkAnnotations(b *loadedBundle) {
	const file = "metadata/annotations.yaml"
	if !b.annotationsRead {
		return
	}
	for _, r := range requiredAnnotations {
		got := strings.TrimSpace(b.annotations[r.key])
		switch {
		case got == "":
			c.add("annotations", file, "%s is missing or empty", r.key)
		case r.value != "" && got != r.value:
			c.add("annotations", file, "%s is %q, want %q", r.key, got, r.value)
		}
	}
	if b.csv != nil && b.annotations[annotationPackage] != "" &&
		!strings.HasPrefix(b.csv.Metadata.Name, b.annotations[annotationPackage]+".v") {
		c.add("annotations", file, "package %q does not match the CSV name %q", b.annotations[annotationPackage], b.csv.Metadata.Name)
	}
	channels := strings.Split(b.annotations[annotationChannels], ",")
	for i := range channels {
		channels[i] = strings.TrimSpace(channels[i])
	}
	if def, ok := b.annotations[annotationDefaultChannel]; ok && !slices.Contains(channels, def) {
		c.add("channel-name", file, "default channel %q is not one of the channels %v", def, channels)
	}
	for _, ch := range channels {
		if ch != "" && !strings.HasPrefix(ch, "candidate") && !strings.HasPrefix(ch, "stable") && !strings.HasPrefix(ch, "fast") {
			c.add("channel-name", file, "channel %q does not start with candidate, stable or fast", ch)
		}
	}
}

// checkDockerfile requires the bundle image's labels to repeat the annotations, key for key.
func (c *checker) checkDockerfile(dockerfile string, annotations map[string]string) {
	data, err := os.ReadFile(dockerfile)
	if err != nil {
		c.add("dockerfile", filepath.Base(dockerfile), "unreadable: %v", err)
		return
	}
	labels := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "LABEL ")
		if !ok {
			continue
		}
		key, value, _ := strings.Cut(strings.TrimSpace(rest), "=")
		labels[key] = strings.Trim(value, `"`)
	}
	for _, key := range slices.Sorted(maps.Keys(annotations)) {
		if labels[key] != annotations[key] {
			c.add("dockerfile", filepath.Base(dockerfile), "LABEL %s is %q, annotations.yaml says %q", key, labels[key], annotations[key])
		}
	}
	for _, key := range slices.Sorted(maps.Keys(labels)) {
		if _, ok := annotations[key]; !ok && strings.HasPrefix(key, "operators.operatorframework.io.") {
			c.add("dockerfile", filepath.Base(dockerfile), "LABEL %s is not in annotations.yaml", key)
		}
	}
}

func (c *checker) checkKinds(b *loadedBundle) {
	deploymentAccounts := map[string]bool{}
	if b.csv != nil {
		for _, d := range b.csv.Spec.Install.Spec.Deployments {
			deploymentAccounts[d.Spec.Template.Spec.ServiceAccountName] = true
		}
	}
	for _, m := range b.manifests {
		kind := m.object.GetKind()
		if !AllowedKinds[kind] {
			c.add("kind", m.file, "kind %s cannot be installed from a registry+v1 bundle", kind)
		}
		if kind == "ServiceAccount" && deploymentAccounts[m.object.GetName()] {
			c.add("service-account", m.file, "ServiceAccount %s is the CSV deployment's; OLM creates it from the CSV", m.object.GetName())
		}
	}
}

// removedAPIs are group versions Kubernetes no longer serves, with the release that removed them.
var removedAPIs = map[string]string{
	"extensions/v1beta1":                   "1.22",
	"apps/v1beta1":                         "1.16",
	"apps/v1beta2":                         "1.16",
	"apiextensions.k8s.io/v1beta1":         "1.22",
	"admissionregistration.k8s.io/v1beta1": "1.22",
	"apiregistration.k8s.io/v1beta1":       "1.22",
	"authentication.k8s.io/v1beta1":        "1.22",
	"authorization.k8s.io/v1beta1":         "1.22",
	"certificates.k8s.io/v1beta1":          "1.22",
	"coordination.k8s.io/v1beta1":          "1.22",
	"networking.k8s.io/v1beta1":            "1.22",
	"rbac.authorization.k8s.io/v1beta1":    "1.22",
	"scheduling.k8s.io/v1beta1":            "1.22",
	"batch/v1beta1":                        "1.25",
	"discovery.k8s.io/v1beta1":             "1.25",
	"events.k8s.io/v1beta1":                "1.25",
	"autoscaling/v2beta1":                  "1.25",
	"policy/v1beta1":                       "1.25",
	"node.k8s.io/v1beta1":                  "1.25",
	"autoscaling/v2beta2":                  "1.26",
	"flowcontrol.apiserver.k8s.io/v1beta1": "1.26",
	"storage.k8s.io/v1beta1":               "1.27",
	"flowcontrol.apiserver.k8s.io/v1beta2": "1.29",
	"flowcontrol.apiserver.k8s.io/v1beta3": "1.32",
}

func (c *checker) checkRemovedAPIs(b *loadedBundle) {
	for _, m := range b.manifests {
		if release, ok := removedAPIs[m.object.GetAPIVersion()]; ok {
			c.add("removed-api", m.file, "%s %s uses %s, removed in Kubernetes %s", m.object.GetKind(), m.object.GetName(),
				m.object.GetAPIVersion(), release)
		}
	}
}

// maxCompressedSize is what OLM can stage in one ConfigMap.
const maxCompressedSize = 1 << 20

// checkSize sums base64(gzip(file)) over the bundle image's contents, as operator-framework/api does.
func (c *checker) checkSize(dir string) {
	var total int
	for _, sub := range []string{"manifests", "metadata", "tests"} {
		_ = filepath.WalkDir(filepath.Join(dir, sub), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil // a missing directory is the layout check's problem
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			total += compressedLen(data)
			return nil
		})
	}
	if total > maxCompressedSize {
		c.add("bundle-size", "", "compressed size %d bytes exceeds %d", total, maxCompressedSize)
	}
}
