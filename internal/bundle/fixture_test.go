package bundle

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

const repoRoot = "../.."

// testOptions generate the fixture bundle; any valid options would do.
var testOptions = Options{
	Version:  "0.1.0",
	Image:    "meshwright/meshwright:v0.1.0",
	Channels: []string{"candidate", "stable"},
}

// goodFiles is a freshly generated bundle and catalog, made once per test binary.
var goodFiles Files

func TestMain(m *testing.M) {
	files, err := Generate(repoRoot, testOptions)
	if err != nil {
		fmt.Fprintf(os.Stderr, "generating the fixture bundle: %v\n", err)
		os.Exit(1)
	}
	goodFiles = files
	os.Exit(m.Run())
}

// goodRoot writes the generated files, unvalidated, into a fresh directory laid out like the repository.
func goodRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for name, data := range goodFiles {
		writeFile(t, root, name, string(data))
	}
	return root
}

func writeFile(t *testing.T, root, name, content string) {
	t.Helper()
	path := filepath.Join(root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, root, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// editYAML decodes one YAML object, lets edit change it, and writes it back.
func editYAML(t *testing.T, root, name string, edit func(obj map[string]any)) {
	t.Helper()
	obj := map[string]any{}
	if err := yaml.Unmarshal([]byte(readFile(t, root, name)), &obj); err != nil {
		t.Fatal(err)
	}
	edit(obj)
	data, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, root, name, string(data))
}

func editCSV(t *testing.T, root string, edit func(csv map[string]any)) {
	t.Helper()
	editYAML(t, root, csvFile, edit)
}

// set assigns a value at a path of map keys, failing the test on a path that does not fit the object.
func set(t *testing.T, obj map[string]any, value any, path ...string) {
	t.Helper()
	if err := unstructured.SetNestedField(obj, value, path...); err != nil {
		t.Fatalf("setting %v: %v", path, err)
	}
}

// get reads a value at a path of map keys.
func get(t *testing.T, obj map[string]any, path ...string) any {
	t.Helper()
	value, found, err := unstructured.NestedFieldNoCopy(obj, path...)
	if err != nil || !found {
		t.Fatalf("reading %v: found=%v %v", path, found, err)
	}
	return value
}

// firstDeploymentContainer returns the CSV's first Deployment's first container, for in-place edits.
func firstDeploymentContainer(t *testing.T, csv map[string]any) map[string]any {
	t.Helper()
	deployments := get(t, csv, "spec", "install", "spec", "deployments").([]any)
	containers := get(t, deployments[0].(map[string]any), "spec", "template", "spec", "containers").([]any)
	return containers[0].(map[string]any)
}

// firstOwnedCRD returns the CSV's first owned CRD entry, for in-place edits.
func firstOwnedCRD(t *testing.T, csv map[string]any) map[string]any {
	t.Helper()
	return get(t, csv, "spec", "customresourcedefinitions", "owned").([]any)[0].(map[string]any)
}

func validateRoot(root string) []Problem {
	return Validate(filepath.Join(root, BundleDir), filepath.Join(root, DockerfilePath))
}

func hasRule(problems []Problem, rule string) bool {
	for _, p := range problems {
		if p.Rule == rule {
			return true
		}
	}
	return false
}
