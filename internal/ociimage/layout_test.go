package ociimage

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

func TestWriteLayoutReplacesAnExistingLayoutAsAWhole(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "image")
	first := mustManagerIndex(t, testBinaries(), testMetadata())
	if err := WriteLayout(dir, first, "0.1.0"); err != nil {
		t.Fatalf("first WriteLayout: %v", err)
	}
	stale := filepath.Join(dir, "stale-file")
	if err := os.WriteFile(stale, []byte("left by someone"), 0o644); err != nil {
		t.Fatal(err)
	}
	second, err := DataImage(map[string]File{"/configs/index.yaml": {Data: []byte("schema: olm.package\n"), Mode: 0o644}}, nil)
	if err != nil {
		t.Fatalf("DataImage: %v", err)
	}
	if err := WriteLayout(dir, second, "0.2.0"); err != nil {
		t.Fatalf("second WriteLayout: %v", err)
	}

	artifact, err := ReadLayout(dir)
	if err != nil {
		t.Fatalf("ReadLayout: %v", err)
	}
	if got, want := artifact.Descriptor.Digest, mustDigest(t, second); got != want {
		t.Errorf("layout holds %s, want the second write %s", got, want)
	}
	if got := artifact.Descriptor.Annotations["org.opencontainers.image.ref.name"]; got != "0.2.0" {
		t.Errorf("ref name = %q, want 0.2.0", got)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file of the old layout directory survived the replacement (stat error %v)", err)
	}
	firstBlob := filepath.Join(dir, "blobs", "sha256", mustDigest(t, first).Hex)
	if _, err := os.Stat(firstBlob); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the old layout's index blob survived the replacement (stat error %v)", err)
	}
	assertOnlyEntry(t, parent, "image")
}

func TestWriteLayoutThatFailsLeavesTheOldLayoutIntact(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "image")
	if err := WriteLayout(dir, mustManagerIndex(t, testBinaries(), testMetadata()), "0.1.0"); err != nil {
		t.Fatalf("WriteLayout: %v", err)
	}
	before := snapshot(t, dir)

	err := WriteLayout(dir, imageWithUnreadableLayer(t), "0.2.0")

	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("WriteLayout of an unreadable image: error %v, want the layer's error", err)
	}
	if after := snapshot(t, dir); !reflect.DeepEqual(after, before) {
		t.Errorf("the old layout changed after a failed write: %d files before, %d after", len(before), len(after))
	}
	assertOnlyEntry(t, parent, "image")
}

// snapshot maps every file of dir to its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(name string, entry os.DirEntry, err error) error {
		if err != nil || entry.IsDir() {
			return err
		}
		data, err := os.ReadFile(name)
		files[strings.TrimPrefix(name, dir)] = string(data)
		return err
	})
	if err != nil {
		t.Fatalf("reading %s: %v", dir, err)
	}
	return files
}

// assertOnlyEntry checks that no temporary or moved-aside layout is left next to the layout.
func assertOnlyEntry(t *testing.T, parent, want string) {
	t.Helper()
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, entry := range entries {
		names = append(names, entry.Name())
	}
	if !reflect.DeepEqual(names, []string{want}) {
		t.Errorf("%s holds %v, want only %s", parent, names, want)
	}
}

// unreadableLayer has a digest, so it fits in a manifest, but its content cannot be read.
type unreadableLayer struct{ v1.Layer }

func (unreadableLayer) Compressed() (io.ReadCloser, error) { return nil, errors.New("disk on fire") }

func imageWithUnreadableLayer(t *testing.T) v1.Image {
	t.Helper()
	img, err := DataImage(map[string]File{"/data": {Data: []byte("x"), Mode: 0o644}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A layer of another image, so that its digest is not one the layout writes anyway.
	other, err := DataImage(map[string]File{"/other": {Data: []byte("y"), Mode: 0o644}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := other.Layers()
	if err != nil {
		t.Fatal(err)
	}
	broken, err := mutate.AppendLayers(img, unreadableLayer{layers[0]})
	if err != nil {
		t.Fatal(err)
	}
	return broken
}
