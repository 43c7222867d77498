// Package gitops checks the Argo CD and Flux examples under config/argocd and config/flux: they parse, have the kinds,
// waves, sync options, ordering and health checks their comments promise, deploy a ServiceMesh that is one of
// config/samples, and stay out of `kustomize build config/default`.
package gitops

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const root = "../.."

// object holds the fields of Argo CD's Application and Flux's Kustomization that the examples must get right; the
// projects' API modules are too heavy a dependency for a few fields.
type object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		// Argo CD Application
		Source *struct {
			RepoURL   string `json:"repoURL"`
			Path      string `json:"path"`
			Kustomize *struct {
				CommonAnnotations map[string]string `json:"commonAnnotations"`
			} `json:"kustomize"`
		} `json:"source"`
		SyncPolicy *struct {
			SyncOptions []string  `json:"syncOptions"`
			Retry       *struct{} `json:"retry"`
		} `json:"syncPolicy"`
		// Flux Kustomization
		Path      string `json:"path"`
		Wait      bool   `json:"wait"`
		Timeout   string `json:"timeout"`
		DependsOn []struct {
			Name string `json:"name"`
		} `json:"dependsOn"`
		HealthChecks []struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Name       string `json:"name"`
			Namespace  string `json:"namespace"`
		} `json:"healthChecks"`
	} `json:"spec"`
}

func readObjects(t *testing.T, path string) []object {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []object
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var o object
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatalf("%s is not valid YAML: %v", path, err)
		}
		if o.Kind != "" {
			out = append(out, o)
		}
	}
}

func find(t *testing.T, objs []object, kind, name string) object {
	t.Helper()
	for _, o := range objs {
		if o.Kind == kind && o.Metadata.Name == name {
			return o
		}
	}
	t.Fatalf("no %s %s", kind, name)
	return object{}
}

// serviceMeshesIn returns the names of the ServiceMeshes the kustomization in dir renders.
func serviceMeshesIn(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	for _, file := range kustomizationResources(t, dir) {
		for _, o := range readObjects(t, file) {
			if o.APIVersion == "mesh.meshwright.dev/v1alpha1" && o.Kind == "ServiceMesh" {
				names = append(names, o.Metadata.Name)
			}
		}
	}
	return names
}

// kustomizationResources lists the files a kustomization pulls in, following directories, relative to the repo root.
func kustomizationResources(t *testing.T, dir string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, r := range k.Resources {
		path := filepath.Join(dir, r)
		info, err := os.Stat(filepath.Join(root, path))
		if err != nil {
			t.Fatalf("%s/kustomization.yaml lists %s: %v", dir, r, err)
		}
		if info.IsDir() {
			files = append(files, path+string(filepath.Separator))
			files = append(files, kustomizationResources(t, path)...)
			continue
		}
		files = append(files, path)
	}
	return files
}

func TestArgoCDApplicationsInstallTheOperatorThenASampleMesh(t *testing.T) {
	objs := readObjects(t, "config/argocd/application.yaml")
	for _, o := range objs {
		if o.APIVersion != "argoproj.io/v1alpha1" || o.Kind != "Application" {
			t.Errorf("%s %s %s: want only argoproj.io/v1alpha1 Applications", o.APIVersion, o.Kind, o.Metadata.Name)
		}
	}
	operator := find(t, objs, "Application", "meshwright")
	mesh := find(t, objs, "Application", "meshwright-mesh")

	t.Run("the operator's Application syncs config/default in wave -1", func(t *testing.T) {
		if w := operator.Metadata.Annotations["argocd.argoproj.io/sync-wave"]; w != "-1" {
			t.Errorf("sync-wave %q", w)
		}
		if operator.Spec.Source == nil || operator.Spec.Source.Path != "config/default" {
			t.Errorf("source %+v", operator.Spec.Source)
		}
	})
	t.Run("the mesh's Application syncs a sample ServiceMesh in wave 0", func(t *testing.T) {
		if w := mesh.Metadata.Annotations["argocd.argoproj.io/sync-wave"]; w != "0" {
			t.Errorf("sync-wave %q", w)
		}
		if mesh.Spec.Source == nil || !strings.HasPrefix(mesh.Spec.Source.Path, "config/samples") {
			t.Fatalf("source %+v, want a path under config/samples", mesh.Spec.Source)
		}
		if names := serviceMeshesIn(t, mesh.Spec.Source.Path); len(names) != 1 {
			t.Errorf("%s renders ServiceMeshes %v, want exactly one", mesh.Spec.Source.Path, names)
		}
	})
	t.Run("the ServiceMesh skips the dry run while its CRD is missing, and the sync retries", func(t *testing.T) {
		var annotations map[string]string
		if mesh.Spec.Source != nil && mesh.Spec.Source.Kustomize != nil {
			annotations = mesh.Spec.Source.Kustomize.CommonAnnotations
		}
		opts := strings.Split(annotations["argocd.argoproj.io/sync-options"], ",")
		if !slices.Contains(opts, "SkipDryRunOnMissingResource=true") {
			t.Errorf("sync-options annotation on the rendered ServiceMesh %q", annotations["argocd.argoproj.io/sync-options"])
		}
		if mesh.Spec.SyncPolicy == nil || mesh.Spec.SyncPolicy.Retry == nil {
			t.Error("no sync retry: the mesh's first sync can race the operator's CRD")
		}
	})
	t.Run("both Applications sync with server-side apply, the mode the no-drift test checks", func(t *testing.T) {
		for _, app := range []object{operator, mesh} {
			if app.Spec.SyncPolicy == nil || !slices.Contains(app.Spec.SyncPolicy.SyncOptions, "ServerSideApply=true") {
				t.Errorf("%s: syncOptions without ServerSideApply=true", app.Metadata.Name)
			}
		}
	})
}

func TestFluxKustomizationsInstallTheOperatorThenWaitForTheMesh(t *testing.T) {
	objs := readObjects(t, "config/flux/meshwright.yaml")
	for _, o := range objs {
		if o.Kind == "Kustomization" && o.APIVersion != "kustomize.toolkit.fluxcd.io/v1" {
			t.Errorf("Kustomization %s has apiVersion %s", o.Metadata.Name, o.APIVersion)
		}
	}
	find(t, objs, "GitRepository", "meshwright")
	operator := find(t, objs, "Kustomization", "meshwright-operator")
	mesh := find(t, objs, "Kustomization", "meshwright-mesh")

	t.Run("the operator's Kustomization applies config/default and waits for it", func(t *testing.T) {
		if operator.Spec.Path != "./config/default" || !operator.Spec.Wait {
			t.Errorf("path %q wait %v", operator.Spec.Path, operator.Spec.Wait)
		}
	})
	t.Run("the mesh's Kustomization depends on the operator's", func(t *testing.T) {
		if len(mesh.Spec.DependsOn) != 1 || mesh.Spec.DependsOn[0].Name != operator.Metadata.Name {
			t.Errorf("dependsOn %+v", mesh.Spec.DependsOn)
		}
	})
	t.Run("the mesh's Kustomization health-checks the sample ServiceMesh it applies, with a timeout", func(t *testing.T) {
		names := serviceMeshesIn(t, strings.TrimPrefix(mesh.Spec.Path, "./"))
		if len(mesh.Spec.HealthChecks) != 1 {
			t.Fatalf("healthChecks %+v", mesh.Spec.HealthChecks)
		}
		hc := mesh.Spec.HealthChecks[0]
		if hc.APIVersion != "mesh.meshwright.dev/v1alpha1" || hc.Kind != "ServiceMesh" || hc.Namespace != "" || !slices.Contains(names, hc.Name) {
			t.Errorf("health check %+v, want the cluster-scoped ServiceMesh among %v", hc, names)
		}
		if d, err := time.ParseDuration(mesh.Spec.Timeout); err != nil || d < 5*time.Minute {
			t.Errorf("timeout %q: want a duration of at least 5m for a first install", mesh.Spec.Timeout)
		}
	})
}

// The examples are not manifests of the operator: kustomize must not pull them into config/default, and no
// kustomization.yaml may sit next to them (kustomize, Flux and Argo CD would read such a directory as a kustomization).
func TestGitOpsExamplesStayOutOfConfigDefault(t *testing.T) {
	for _, file := range kustomizationResources(t, "config/default") {
		for _, dir := range []string{"config/argocd", "config/flux"} {
			if strings.HasPrefix(filepath.ToSlash(file), dir+"/") {
				t.Errorf("config/default pulls in %s", file)
			}
		}
	}
	for _, dir := range []string{"config/argocd", "config/flux"} {
		if _, err := os.Stat(filepath.Join(root, dir, "kustomization.yaml")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s has a kustomization.yaml (%v)", dir, err)
		}
	}
}
