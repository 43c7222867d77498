package argocd

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"
)

// configDir holds the script in Argo CD's resource_customizations layout: health.lua, health_test.yaml, testdata/.
const configDir = "../../config/argocd"

// healthTestFile is Argo CD's health_test.yaml format.
type healthTestFile struct {
	Tests []struct {
		HealthStatus Health `json:"healthStatus"`
		InputPath    string `json:"inputPath"`
	} `json:"tests"`
}

// numberDecoding is how integers reach the script: Argo CD's own script tests decode YAML (float64); its controller
// works on objects from the API server (int64).
type numberDecoding struct {
	name   string
	decode func([]byte) (map[string]any, error)
}

var decodings = []numberDecoding{
	{"decoded from YAML (float64)", func(data []byte) (map[string]any, error) {
		obj := map[string]any{}
		return obj, yaml.Unmarshal(data, &obj)
	}},
	{"as the API server delivers them (int64)", decodeLive},
}

func decodeLive(data []byte) (map[string]any, error) {
	data, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, err
	}
	obj := map[string]any{}
	return obj, utiljson.Unmarshal(data, &obj)
}

func readScript(t *testing.T) string {
	t.Helper()
	script, err := os.ReadFile(filepath.Join(configDir, "health.lua"))
	if err != nil {
		t.Fatal(err)
	}
	return string(script)
}

func readHealthTests(t *testing.T) healthTestFile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(configDir, "health_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var tests healthTestFile
	if err := yaml.UnmarshalStrict(data, &tests); err != nil {
		t.Fatalf("health_test.yaml is not in Argo CD's format: %v", err)
	}
	if len(tests.Tests) == 0 {
		t.Fatal("health_test.yaml lists no tests")
	}
	return tests
}

func TestHealthScriptOnCapturedServiceMeshes(t *testing.T) {
	script := readScript(t)
	for _, tc := range readHealthTests(t).Tests {
		data, err := os.ReadFile(filepath.Join(configDir, tc.InputPath))
		if err != nil {
			t.Fatal(err)
		}
		for _, libs := range []Libraries{Standard, Restricted} {
			for _, d := range decodings {
				name := fmt.Sprintf("%s is %s with %s, numbers %s", tc.InputPath, tc.HealthStatus.Status, libs, d.name)
				t.Run(name, func(t *testing.T) {
					obj, err := d.decode(data)
					if err != nil {
						t.Fatal(err)
					}
					got, err := RunHealthScript(script, obj, libs)
					if err != nil {
						t.Fatal(err)
					}
					if got != tc.HealthStatus {
						t.Errorf("health %+v, want %+v", got, tc.HealthStatus)
					}
				})
			}
		}
	}
}

func TestHealthTestsCoverEveryCapturedObject(t *testing.T) {
	tests := readHealthTests(t)
	var listed, statuses []string
	for _, tc := range tests.Tests {
		listed = append(listed, filepath.Clean(tc.InputPath))
		statuses = append(statuses, tc.HealthStatus.Status)
	}
	files, err := filepath.Glob(filepath.Join(configDir, "testdata", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		rel, _ := filepath.Rel(configDir, f)
		if !slices.Contains(listed, rel) {
			t.Errorf("%s is captured but health_test.yaml does not test it", rel)
		}
	}
	for _, want := range []string{"Healthy", "Progressing", "Degraded"} {
		if !slices.Contains(statuses, want) {
			t.Errorf("no test expects %s", want)
		}
	}
}

// Argo CD, Flux and `kubectl wait` must agree on every captured state: Healthy is kstatus Current, Degraded is
// Failed, and Progressing is InProgress or Terminating.
func TestHealthScriptAgreesWithKstatus(t *testing.T) {
	want := map[string][]status.Status{
		"Healthy":     {status.CurrentStatus},
		"Degraded":    {status.FailedStatus},
		"Progressing": {status.InProgressStatus, status.TerminatingStatus},
	}
	for _, tc := range readHealthTests(t).Tests {
		t.Run(tc.InputPath+" is "+tc.HealthStatus.Status+" for kstatus too", func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(configDir, tc.InputPath))
			if err != nil {
				t.Fatal(err)
			}
			obj, err := decodeLive(data)
			if err != nil {
				t.Fatal(err)
			}
			res, err := status.Compute(&unstructured.Unstructured{Object: obj})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(want[tc.HealthStatus.Status], res.Status) {
				t.Errorf("kstatus %s (%s), want one of %v for Argo CD's %s", res.Status, res.Message,
					want[tc.HealthStatus.Status], tc.HealthStatus.Status)
			}
		})
	}
}
