package generated

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

func yamlFiles(t *testing.T, dir string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = filepath.Base(p)
	}
	return names
}

// TestGatewayAPICRDsAreCurrent regenerates the Gateway API standard-channel CRDs from go.mod's
// sigs.k8s.io/gateway-api Go types and requires the embedded files to be the same, file for file and byte for byte,
// so a module bump or a generator change cannot land without `make gatewayapi-crds`.
func TestGatewayAPICRDsAreCurrent(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	cmd := exec.Command("go", "run", "./hack/gatewayapi", "-out", out)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run ./hack/gatewayapi: %v\n%s", err, b)
	}
	checkedInDir := filepath.Join(root, "internal", "gatewayapi", "crds")
	generated, checkedIn := yamlFiles(t, out), yamlFiles(t, checkedInDir)
	if len(generated) == 0 {
		t.Fatal("the generator wrote no CRD")
	}
	t.Run("internal/gatewayapi/crds holds exactly the generated files", func(t *testing.T) {
		if !slices.Equal(generated, checkedIn) {
			t.Errorf("generated %v, checked in %v: run `make gatewayapi-crds` and commit the result", generated, checkedIn)
		}
	})
	for _, name := range generated {
		t.Run("internal/gatewayapi/crds/"+name+" matches the generator", func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(out, name))
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(checkedInDir, name))
			if err != nil {
				t.Fatalf("%v: run `make gatewayapi-crds` and commit the result", err)
			}
			if !bytes.Equal(want, got) {
				t.Errorf("%s is stale: run `make gatewayapi-crds` and commit the result", name)
			}
		})
	}
}
