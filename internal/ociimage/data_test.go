package ociimage

import (
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func TestDataImage(t *testing.T) {
	for _, tc := range []struct {
		name       string
		dirs       map[string]fstest.MapFS // destination in the image → source tree
		labels     map[string]string
		wantPaths  []string
		wantLabels map[string]string
	}{
		{
			name: "an OLM bundle holds its manifests, its metadata and the bundle annotations as labels",
			dirs: map[string]fstest.MapFS{
				"/manifests": {
					"meshwright.clusterserviceversion.yaml":  {Data: []byte("kind: ClusterServiceVersion\n"), Mode: 0o600},
					"mesh.meshwright.dev_servicemeshes.yaml": {Data: []byte("kind: CustomResourceDefinition\n"), Mode: 0o644},
				},
				"/metadata": {"annotations.yaml": {Data: []byte("annotations: {}\n"), Mode: 0o644}},
			},
			labels: map[string]string{
				"operators.operatorframework.io.bundle.mediatype.v1": "registry+v1",
				"operators.operatorframework.io.bundle.manifests.v1": "manifests/",
				"operators.operatorframework.io.bundle.metadata.v1":  "metadata/",
				"operators.operatorframework.io.bundle.package.v1":   "meshwright",
			},
			wantPaths: []string{
				"manifests/", "manifests/mesh.meshwright.dev_servicemeshes.yaml",
				"manifests/meshwright.clusterserviceversion.yaml", "metadata/", "metadata/annotations.yaml",
			},
			wantLabels: map[string]string{
				"operators.operatorframework.io.bundle.mediatype.v1": "registry+v1",
				"operators.operatorframework.io.bundle.manifests.v1": "manifests/",
				"operators.operatorframework.io.bundle.metadata.v1":  "metadata/",
				"operators.operatorframework.io.bundle.package.v1":   "meshwright",
			},
		},
		{
			name: "a file-based catalog holds its package directories under /configs",
			dirs: map[string]fstest.MapFS{
				"/configs": {"meshwright/catalog.yaml": {Data: []byte("schema: olm.package\n"), Mode: 0o644}},
			},
			labels:     map[string]string{"operators.operatorframework.io.index.configs.v1": "/configs"},
			wantPaths:  []string{"configs/", "configs/meshwright/", "configs/meshwright/catalog.yaml"},
			wantLabels: map[string]string{"operators.operatorframework.io.index.configs.v1": "/configs"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]File{}
			for dest, fsys := range tc.dirs {
				if err := DirFiles(fsys, dest, files); err != nil {
					t.Fatalf("DirFiles(%s): %v", dest, err)
				}
			}
			img, err := DataImage(files, tc.labels)
			if err != nil {
				t.Fatalf("DataImage: %v", err)
			}
			configFile, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(configFile.Config.Labels, tc.wantLabels) {
				t.Errorf("labels = %v, want %v", configFile.Config.Labels, tc.wantLabels)
			}
			if configFile.Config.Entrypoint != nil || configFile.Config.Cmd != nil {
				t.Errorf("entrypoint %q, cmd %q, want none in a files-only image", configFile.Config.Entrypoint, configFile.Config.Cmd)
			}
			if got := configFile.Platform().String(); got != "linux/amd64" {
				t.Errorf("platform = %s, want linux/amd64", got)
			}
			names, headers, _ := layerEntries(t, img)
			if !reflect.DeepEqual(names, tc.wantPaths) {
				t.Errorf("layer entries = %q, want %q", names, tc.wantPaths)
			}
			for name, header := range headers {
				if !strings.HasSuffix(name, "/") && header.Mode != 0o644 {
					t.Errorf("%s has mode %o, want 644 whatever the source's permissions", name, header.Mode)
				}
			}
		})
	}
}

func TestDirFilesRefuses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fsys    fstest.MapFS
		into    map[string]File
		wantErr string
	}{
		{
			name:    "a symbolic link, whose target the image could not hold",
			fsys:    fstest.MapFS{"link": {Data: []byte("/etc/passwd"), Mode: fs.ModeSymlink}},
			into:    map[string]File{},
			wantErr: "link is not a regular file or directory",
		},
		{
			name:    "a file another directory already put at the same path",
			fsys:    fstest.MapFS{"annotations.yaml": {Data: []byte("a"), Mode: 0o644}},
			into:    map[string]File{"/metadata/annotations.yaml": {Data: []byte("b"), Mode: 0o644}},
			wantErr: "image path /metadata/annotations.yaml given twice",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := DirFiles(tc.fsys, "/metadata", tc.into)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("DirFiles: error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestDataImageLayoutKeepsLabelsAndFiles(t *testing.T) {
	img, err := DataImage(map[string]File{"/configs/meshwright/catalog.yaml": {Data: []byte("schema: olm.package\n"), Mode: 0o644}},
		map[string]string{"operators.operatorframework.io.index.configs.v1": "/configs"})
	if err != nil {
		t.Fatalf("DataImage: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "catalog-image")
	if err := WriteLayout(dir, img, "v0.1.0"); err != nil {
		t.Fatalf("WriteLayout: %v", err)
	}
	artifact, err := ReadLayout(dir)
	if err != nil {
		t.Fatalf("ReadLayout: %v", err)
	}
	if artifact.Image == nil {
		t.Fatalf("layout entry %s is not an image", artifact.Descriptor.MediaType)
	}
	if err := validate.Image(artifact.Image); err != nil {
		t.Errorf("the image read back from the layout does not validate: %v", err)
	}
	got, err := ExtractFile(dir, DataPlatform, "/configs/meshwright/catalog.yaml")
	if err != nil {
		t.Fatalf("ExtractFile: %v", err)
	}
	if string(got) != "schema: olm.package\n" {
		t.Errorf("extracted %q, want the catalog file", got)
	}
}
