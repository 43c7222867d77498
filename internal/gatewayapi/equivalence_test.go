package gatewayapi

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// moduleStandardCRDs reads the standard-channel CRDs that the sigs.k8s.io/gateway-api module of go.mod ships as
// YAML. They serve only as the reference here: the embedded CRDs are generated from the module's Go types.
func moduleStandardCRDs(t *testing.T) map[string]*unstructured.Unstructured {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api").Output()
	if err != nil {
		t.Fatalf("locating the sigs.k8s.io/gateway-api module: %v", err)
	}
	paths, err := filepath.Glob(filepath.Join(strings.TrimSpace(string(out)), "config", "crd", "standard", "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no standard-channel YAML in the module (%v)", err)
	}
	crds := map[string]*unstructured.Unstructured{}
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(raw), "\n---\n") {
			obj := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
				t.Fatalf("parsing %s: %v", p, err)
			}
			// The standard directory also holds a ValidatingAdmissionPolicy that upstream writes by hand.
			if obj.GetKind() == "CustomResourceDefinition" {
				crds[obj.GetName()] = obj
			}
		}
	}
	return crds
}

func TestEmbeddedCRDsAreTheModulesStandardChannel(t *testing.T) {
	want := moduleStandardCRDs(t)
	crds, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*unstructured.Unstructured{}
	for _, c := range crds {
		got[c.GetName()] = c
	}
	t.Run("the same CRDs as the module's standard channel", func(t *testing.T) {
		if g, w := sortedKeys(got), sortedKeys(want); !slices.Equal(g, w) {
			t.Errorf("embedded %v, module's standard channel %v", g, w)
		}
	})
	for _, name := range sortedKeys(want) {
		g, ok := got[name]
		if !ok {
			continue
		}
		// The YAML parser yields float64 where the embedded CRDs hold int64; compare both after one round trip.
		w := normalise(t, want[name].Object)
		for _, field := range []string{"kind", "apiVersion", "metadata", "spec"} {
			t.Run(name+" has the module's "+field, func(t *testing.T) {
				if path := firstDifference(field, normalise(t, g.Object)[field], w[field]); path != "" {
					t.Errorf("differs from the module's config/crd/standard at %s", path)
				}
			})
		}
	}
}

func normalise(t *testing.T, obj map[string]any) map[string]any {
	t.Helper()
	raw, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := yaml.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// firstDifference returns the path of the first place where got and want differ, or "" when they are equal.
func firstDifference(path string, got, want any) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return path
		}
		for _, k := range sortedKeys(unionKeys(g, w)) {
			if d := firstDifference(path+"."+k, g[k], w[k]); d != "" {
				return d
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s (length)", path)
		}
		for i := range w {
			if d := firstDifference(fmt.Sprintf("%s[%d]", path, i), g[i], w[i]); d != "" {
				return d
			}
		}
		return ""
	default:
		if !reflect.DeepEqual(got, want) {
			return fmt.Sprintf("%s (%v, want %v)", path, got, want)
		}
		return ""
	}
}

func unionKeys(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k := range a {
		out[k] = nil
	}
	for k := range b {
		out[k] = nil
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
