package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/meshwright/meshwright/internal/ociimage"
)

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		target := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(target, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFilesBuildsABundleImageLabelledFromItsAnnotations(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{
		"manifests/meshwright.clusterserviceversion.yaml": "kind: ClusterServiceVersion\n",
		"metadata/annotations.yaml": "annotations:\n" +
			"  operators.operatorframework.io.bundle.mediatype.v1: registry+v1\n" +
			"  operators.operatorframework.io.bundle.manifests.v1: manifests/\n" +
			"  operators.operatorframework.io.bundle.metadata.v1: metadata/\n" +
			"  operators.operatorframework.io.bundle.package.v1: meshwright\n",
	})
	out := filepath.Join(t.TempDir(), "bundle-image")

	res := runCLI("files", "--out", out, "--tag", "0.1.0",
		"--labels-from", filepath.Join(src, "metadata/annotations.yaml"),
		"--label", "org.opencontainers.image.version=0.1.0",
		"--dir", filepath.Join(src, "manifests")+":/manifests", "--dir", filepath.Join(src, "metadata")+":/metadata")

	if res.code != 0 {
		t.Fatalf("files: exit %d: %s", res.code, res.stderr)
	}
	artifact, err := ociimage.ReadLayout(out)
	if err != nil {
		t.Fatalf("ReadLayout: %v", err)
	}
	if !strings.HasPrefix(res.stdout, out+": image "+artifact.Descriptor.Digest.String()) {
		t.Errorf("files printed %q, want the layout and its digest %s", res.stdout, artifact.Descriptor.Digest)
	}
	configFile, err := artifact.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	wantLabels := map[string]string{
		"operators.operatorframework.io.bundle.mediatype.v1": "registry+v1",
		"operators.operatorframework.io.bundle.manifests.v1": "manifests/",
		"operators.operatorframework.io.bundle.metadata.v1":  "metadata/",
		"operators.operatorframework.io.bundle.package.v1":   "meshwright",
		"org.opencontainers.image.version":                   "0.1.0",
	}
	if !reflect.DeepEqual(configFile.Config.Labels, wantLabels) {
		t.Errorf("labels = %v, want %v", configFile.Config.Labels, wantLabels)
	}
	for _, file := range []string{"/manifests/meshwright.clusterserviceversion.yaml", "/metadata/annotations.yaml"} {
		if _, err := ociimage.ExtractFile(out, ociimage.DataPlatform, file); err != nil {
			t.Errorf("the bundle image lacks %s: %v", file, err)
		}
	}
}

func TestCommandLineMistakesExitWithUsage(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"catalog/index.yaml": "schema: olm.package\n", "bad.yaml": "annotations: [1]\n"})
	for _, tc := range []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{name: "an unknown subcommand", args: []string{"build"}, wantCode: 2, wantStderr: "usage: go run ./hack/image manager|push|files|extract"},
		{name: "files without a directory", args: []string{"files", "--out", filepath.Join(dir, "o")}, wantCode: 2, wantStderr: "files: --out and at least one --dir src:/dest are required"},
		{name: "a label without a value", args: []string{"files", "--out", filepath.Join(dir, "o"), "--dir", dir + "/catalog:/configs", "--label", "novalue"}, wantCode: 2, wantStderr: `files: --label "novalue" is not key=value`},
		{name: "a relative destination", args: []string{"files", "--out", filepath.Join(dir, "o"), "--dir", dir + "/catalog:configs"}, wantCode: 2, wantStderr: "is not src:/absolute/dest"},
		{name: "an annotations file that is no map", args: []string{"files", "--out", filepath.Join(dir, "o"), "--dir", dir + "/catalog:/configs", "--labels-from", dir + "/bad.yaml"}, wantCode: 1, wantStderr: "files: reading labels from " + dir + "/bad.yaml"},
		{name: "extract of an unparsable platform", args: []string{"extract", "--layout", managerLayout.dir, "--platform", "a/b/c/d", "--to", filepath.Join(dir, "x")}, wantCode: 2, wantStderr: `extract: --platform "a/b/c/d"`},
	} {
		t.Run("reports "+tc.name, func(t *testing.T) {
			res := runCLI(tc.args...)
			if res.code != tc.wantCode || !strings.Contains(res.stderr, tc.wantStderr) || strings.Count(res.stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want exit %d and one line containing %q", res.code, res.stderr, tc.wantCode, tc.wantStderr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "o")); !os.IsNotExist(err) {
		t.Errorf("a failed files command left a layout behind (stat error %v)", err)
	}
}
