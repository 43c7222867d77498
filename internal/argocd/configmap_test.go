package argocd

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite config/argocd/argocd-cm.yaml from config/argocd/health.lua")

func TestArgoCDConfigMapCarriesHealthLua(t *testing.T) {
	script := readScript(t)
	want, err := ConfigMapPatch(script)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(configDir, "argocd-cm.yaml")
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("argocd-cm.yaml is what the generator renders from health.lua", func(t *testing.T) {
		if !bytes.Equal(got, want) {
			t.Error("config/argocd/argocd-cm.yaml is stale: run `make argocd` (or go test ./internal/argocd -update)")
		}
	})
	t.Run("the script in argocd-cm.yaml is health.lua byte for byte", func(t *testing.T) {
		cm := &corev1.ConfigMap{}
		if err := yaml.UnmarshalStrict(got, cm); err != nil {
			t.Fatal(err)
		}
		if cm.Kind != "ConfigMap" || cm.Name != "argocd-cm" {
			t.Errorf("got %s %s, want ConfigMap argocd-cm", cm.Kind, cm.Name)
		}
		if cm.Data[ServiceMeshHealthKey] != script {
			t.Errorf("data[%s] differs from health.lua:\n%s", ServiceMeshHealthKey, cm.Data[ServiceMeshHealthKey])
		}
		if len(cm.Data) != 1 {
			t.Errorf("argocd-cm patch sets %d keys, want only the health script (no useOpenLibs)", len(cm.Data))
		}
	})
}

func TestConfigMapPatchRejectsScriptsThatWouldNotRoundTrip(t *testing.T) {
	for name, script := range map[string]string{
		"an empty script":                    "",
		"a script without a final newline":   "return {}",
		"a script with trailing blank lines": "return {}\n\n",
	} {
		t.Run(name+" is rejected", func(t *testing.T) {
			if _, err := ConfigMapPatch(script); err == nil {
				t.Error("no error")
			}
		})
	}
}
