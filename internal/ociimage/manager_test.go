package ociimage

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func newRegistry(t *testing.T) string {
	t.Helper()
	server := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(server.Close)
	return strings.TrimPrefix(server.URL, "http://")
}

func TestManagerImageRoundTripsThroughARegistry(t *testing.T) {
	idx := mustManagerIndex(t, testBinaries(), testMetadata())
	dir := filepath.Join(t.TempDir(), "image")
	if err := WriteLayout(dir, idx, "0.1.0"); err != nil {
		t.Fatalf("WriteLayout: %v", err)
	}
	ref := newRegistry(t) + "/meshwright:v0.1.0"
	pushed, err := Push(context.Background(), dir, ref)
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	if built := mustDigest(t, idx); pushed != built {
		t.Errorf("pushed digest %s, want the built digest %s", pushed, built)
	}
	reference, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Index(reference)
	if err != nil {
		t.Fatalf("pulling %s: %v", ref, err)
	}
	if got := mustDigest(t, pulled); got != pushed {
		t.Errorf("registry serves %s, pushed %s", got, pushed)
	}
	// Digests, sizes and diff IDs agree with the content the registry serves.
	if err := validate.Index(pulled); err != nil {
		t.Errorf("the pulled index does not validate: %v", err)
	}

	images := imagesByPlatform(t, pulled)
	if got, want := sortedKeys(images), []string{"linux/amd64", "linux/arm64"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("index platforms = %v, want exactly %v", got, want)
	}
	machines := map[string]elf.Machine{"linux/amd64": elf.EM_X86_64, "linux/arm64": elf.EM_AARCH64}
	for platform, img := range images {
		t.Run(platform+" runs /manager as a numeric non-root user", func(t *testing.T) {
			assertManagerConfig(t, img, platform)
		})
		t.Run(platform+" holds /manager compiled for its machine", func(t *testing.T) {
			manager := fileInLayer(t, img, "manager")
			if manager.mode != 0o755 {
				t.Errorf("/manager mode = %o, want 755", manager.mode)
			}
			binary, err := elf.NewFile(bytes.NewReader(manager.data))
			if err != nil {
				t.Fatalf("/manager is not an ELF file: %v", err)
			}
			if binary.Machine != machines[platform] {
				t.Errorf("/manager machine = %v, want %v", binary.Machine, machines[platform])
			}
		})
	}
}

func assertManagerConfig(t *testing.T, img v1.Image, platform string) {
	t.Helper()
	configFile, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("reading config: %v", err)
	}
	if got := configFile.Platform().String(); got != platform {
		t.Errorf("config platform = %s, want %s", got, platform)
	}
	if got := configFile.Config.Entrypoint; !reflect.DeepEqual(got, []string{"/manager"}) {
		t.Errorf("entrypoint = %q, want [/manager]", got)
	}
	if got := configFile.Config.User; got != "65532:65532" {
		t.Errorf("user = %q, want 65532:65532", got)
	}
	if got := configFile.Config.WorkingDir; got != "/" {
		t.Errorf("working dir = %q, want /", got)
	}
	if got, want := configFile.Config.Labels, testMetadata().Labels(); !reflect.DeepEqual(got, want) {
		t.Errorf("labels = %v, want %v", got, want)
	}
	if !configFile.Created.Time.Equal(epoch) {
		t.Errorf("created = %v, want the epoch", configFile.Created.Time)
	}
}

func TestManagerIndexDigest(t *testing.T) {
	base := mustDigest(t, mustManagerIndex(t, testBinaries(), testMetadata()))
	reversed := []Binary{testBinaries()[1], testBinaries()[0]}
	newVersion := testMetadata()
	newVersion.Version = "0.2.0"
	otherBinary := testBinaries()
	otherBinary[0].Data = append(bytes.Clone(otherBinary[0].Data), 0)
	for _, tc := range []struct {
		name     string
		binaries []Binary
		meta     Metadata
		same     bool
	}{
		{name: "is the same when the same inputs are built again", binaries: testBinaries(), meta: testMetadata(), same: true},
		{name: "does not depend on the order of the platforms", binaries: reversed, meta: testMetadata(), same: true},
		{name: "changes with the version label", binaries: testBinaries(), meta: newVersion, same: false},
		{name: "changes with a binary", binaries: otherBinary, meta: testMetadata(), same: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mustDigest(t, mustManagerIndex(t, tc.binaries, tc.meta))
			if (got == base) != tc.same {
				t.Errorf("digest %s, first build %s, want same=%v", got, base, tc.same)
			}
		})
	}
}

func TestMetadataLabels(t *testing.T) {
	for _, tc := range []struct {
		name string
		meta Metadata
		want map[string]string
	}{
		{name: "names every field with its org.opencontainers.image key", meta: testMetadata(), want: map[string]string{
			"org.opencontainers.image.source":      "https://github.com/meshwright/meshwright",
			"org.opencontainers.image.version":     "0.1.0",
			"org.opencontainers.image.revision":    "0123456789abcdef0123456789abcdef01234567",
			"org.opencontainers.image.title":       "Meshwright",
			"org.opencontainers.image.description": "Istio service mesh operator",
			"org.opencontainers.image.licenses":    "Apache-2.0",
		}},
		{name: "leaves out empty fields, such as a revision outside git", meta: Metadata{Version: "0.1.0"}, want: map[string]string{
			"org.opencontainers.image.version": "0.1.0",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.meta.Labels(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Labels() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestManagerIndexRefusesTheSamePlatformTwice(t *testing.T) {
	binaries := []Binary{testBinaries()[0], testBinaries()[0]}
	if _, err := ManagerIndex(binaries, testMetadata()); err == nil || !strings.Contains(err.Error(), "linux/amd64 given twice") {
		t.Errorf("ManagerIndex with two linux/amd64 binaries: error %v, want one naming linux/amd64", err)
	}
}

func TestExtractFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "image")
	if err := WriteLayout(dir, mustManagerIndex(t, testBinaries(), testMetadata()), "0.1.0"); err != nil {
		t.Fatalf("WriteLayout: %v", err)
	}
	t.Run("returns the bytes of the amd64 manager", func(t *testing.T) {
		got, err := ExtractFile(dir, amd64, "/manager")
		if err != nil {
			t.Fatalf("ExtractFile: %v", err)
		}
		if !bytes.Equal(got, trivialBinaries[amd64.String()]) {
			t.Errorf("extracted %d bytes that differ from the %d-byte amd64 binary", len(got), len(trivialBinaries[amd64.String()]))
		}
	})
	for _, tc := range []struct {
		name     string
		platform v1.Platform
		file     string
		wantErr  string
	}{
		{name: "fails for a platform the index lacks", platform: v1.Platform{OS: "linux", Architecture: "s390x"}, file: "/manager", wantErr: "no image for linux/s390x"},
		{name: "fails for a file the image lacks", platform: arm64, file: "/bin/sh", wantErr: "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ExtractFile(dir, tc.platform, tc.file)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ExtractFile(%s, %s): error %v, want one containing %q", tc.platform.String(), tc.file, err, tc.wantErr)
			}
		})
	}
}

type layerFile struct {
	data []byte
	mode int64
}

func imagesByPlatform(t *testing.T, idx v1.ImageIndex) map[string]v1.Image {
	t.Helper()
	manifest, err := idx.IndexManifest()
	if err != nil {
		t.Fatalf("reading index manifest: %v", err)
	}
	images := map[string]v1.Image{}
	for _, desc := range manifest.Manifests {
		if desc.Platform == nil {
			t.Fatalf("index entry %s has no platform", desc.Digest)
		}
		img, err := idx.Image(desc.Digest)
		if err != nil {
			t.Fatalf("reading image %s: %v", desc.Digest, err)
		}
		images[desc.Platform.String()] = img
	}
	return images
}

// layerEntries reads the image's only layer, asserting there is exactly one.
func layerEntries(t *testing.T, img v1.Image) (names []string, headers map[string]*tar.Header, data map[string][]byte) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatalf("reading layers: %v", err)
	}
	if len(layers) != 1 {
		t.Fatalf("image has %d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatalf("reading layer: %v", err)
	}
	defer rc.Close()
	headers, data = map[string]*tar.Header{}, map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		header, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names, headers, data
		}
		if err != nil {
			t.Fatalf("reading layer tar: %v", err)
		}
		content, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("reading %s: %v", header.Name, err)
		}
		names = append(names, header.Name)
		headers[header.Name], data[header.Name] = header, content
	}
}

func fileInLayer(t *testing.T, img v1.Image, name string) layerFile {
	t.Helper()
	_, headers, data := layerEntries(t, img)
	header, ok := headers[name]
	if !ok {
		t.Fatalf("layer has no %s", name)
	}
	if header.Typeflag != tar.TypeReg {
		t.Fatalf("%s has tar type %q, want a regular file", name, header.Typeflag)
	}
	return layerFile{data: data[name], mode: header.Mode}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for key := range m {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	return keys
}
