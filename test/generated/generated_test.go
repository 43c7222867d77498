// Package generated proves that the checked-in generated files (CRD, RBAC, deepcopy) match what controller-gen
// produces from the current Go sources, so a change to an API type or an RBAC marker cannot land without them.
package generated

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

const controllerToolsVersion = "v0.23.0"

func controllerGen(t *testing.T, root string, args ...string) {
	t.Helper()
	var cmd *exec.Cmd
	if bin := os.Getenv("CONTROLLER_GEN"); bin != "" {
		cmd = exec.Command(bin, args...)
	} else {
		cmd = exec.Command("go", append([]string{"run", "sigs.k8s.io/controller-tools/cmd/controller-gen@" + controllerToolsVersion}, args...)...)
	}
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("controller-gen %v: %v\n%s", args, err, out)
	}
}

func TestGeneratedFilesAreCurrent(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	controllerGen(t, root, "object:headerFile=hack/boilerplate.go.txt", "paths=./api/...", "output:object:dir="+filepath.Join(out, "object"))
	controllerGen(t, root, "rbac:roleName=manager-role", "crd", "paths=./...",
		"output:crd:dir="+filepath.Join(out, "crd"), "output:rbac:dir="+filepath.Join(out, "rbac"))

	for generated, checkedIn := range map[string]string{
		"object/zz_generated.deepcopy.go":            "api/v1alpha1/zz_generated.deepcopy.go",
		"crd/mesh.meshwright.dev_servicemeshes.yaml": "config/crd/bases/mesh.meshwright.dev_servicemeshes.yaml",
		"rbac/role.yaml":                             "config/rbac/role.yaml",
	} {
		t.Run(checkedIn+" matches controller-gen", func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(out, generated))
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(root, checkedIn))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(want, got) {
				t.Errorf("%s is stale: run `make manifests generate` and commit the result", checkedIn)
			}
		})
	}
}
