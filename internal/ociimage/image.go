// Package ociimage owns the shape of Meshwright's container images and their life outside a container engine: it builds
// single-layer images on an empty base from in-memory files, deterministically (fixed timestamps, sorted entries, so
// the same inputs always give the same digest), assembles them into a multi-platform OCI index, stores them in an OCI
// image layout directory, pushes a layout to a registry and reads a file back out of a layout.
//
// It must not run a compiler or a container engine, and must not know Meshwright's directories: callers (hack/image)
// hand it bytes.
package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// epoch is every timestamp in our images: a build time in the image would change its digest on every build.
var epoch = time.Unix(0, 0).UTC()

// File is one entry of an image's only layer: a regular file, or a directory when Mode has fs.ModeDir.
type File struct {
	Data []byte
	// Mode holds the permission bits (fs.ModeSticky, fs.ModeSetuid and fs.ModeSetgid are kept) and fs.ModeDir.
	Mode fs.FileMode
}

// Config is what an image's config says about how to run it.
type Config struct {
	Platform   v1.Platform
	Entrypoint []string
	// User is numeric ("65532:65532") so that Kubernetes' runAsNonRoot can verify it without an /etc/passwd.
	User       string
	WorkingDir string
	Env        []string
	Labels     map[string]string
}

// Image builds an image on an empty base from files (absolute paths in the image) as one gzip-compressed tar layer.
// Parent directories are added as root-owned 0755 entries unless files lists them.
func Image(files map[string]File, cfg Config) (v1.Image, error) {
	if cfg.Platform.OS == "" || cfg.Platform.Architecture == "" {
		return nil, fmt.Errorf("building image: platform %q has no OS or architecture", cfg.Platform.String())
	}
	uncompressed, err := layerTar(files)
	if err != nil {
		return nil, fmt.Errorf("building image layer: %w", err)
	}
	layer, err := gzipLayer(uncompressed)
	if err != nil {
		return nil, fmt.Errorf("building image layer: %w", err)
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "meshwright hack/image"},
	})
	if err != nil {
		return nil, fmt.Errorf("appending image layer: %w", err)
	}
	return withConfig(img, cfg)
}

func withConfig(img v1.Image, cfg Config) (v1.Image, error) {
	configFile, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading image config: %w", err)
	}
	configFile = configFile.DeepCopy()
	configFile.Created = v1.Time{Time: epoch}
	configFile.OS = cfg.Platform.OS
	configFile.Architecture = cfg.Platform.Architecture
	configFile.Variant = cfg.Platform.Variant
	configFile.Config = v1.Config{
		Entrypoint: cfg.Entrypoint,
		User:       cfg.User,
		WorkingDir: cfg.WorkingDir,
		Env:        cfg.Env,
		Labels:     cfg.Labels,
	}
	img, err = mutate.ConfigFile(img, configFile)
	if err != nil {
		return nil, fmt.Errorf("writing image config: %w", err)
	}
	return img, nil
}

// gzipLayer compresses at the default level: a fixed level and no gzip header time keep the digest reproducible.
func gzipLayer(uncompressed []byte) (v1.Layer, error) {
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(uncompressed)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressionLevel(gzip.DefaultCompression))
}

// layerTar writes files and their parent directories as a tar stream sorted by path, with names relative to the root
// as container engines write them, owned by root, dated at the epoch.
func layerTar(files map[string]File) ([]byte, error) {
	entries, err := withParents(files)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for name := range entries {
		names = append(names, name)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range names {
		if err := writeEntry(tw, name, entries[name]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("closing layer tar: %w", err)
	}
	return buf.Bytes(), nil
}

// withParents returns files keyed by cleaned relative path, plus a directory entry for every missing parent.
func withParents(files map[string]File) (map[string]File, error) {
	entries := make(map[string]File, len(files))
	for name, file := range files {
		rel, err := relativeName(name)
		if err != nil {
			return nil, err
		}
		if _, dup := entries[rel]; dup {
			return nil, fmt.Errorf("layer path %q given twice", name)
		}
		entries[rel] = file
	}
	for rel := range entries {
		for dir := path.Dir(rel); dir != "."; dir = path.Dir(dir) {
			if existing, ok := entries[dir]; ok {
				if !existing.Mode.IsDir() {
					return nil, fmt.Errorf("layer path %q is a file and the parent of %q", dir, rel)
				}
				continue
			}
			entries[dir] = File{Mode: fs.ModeDir | 0o755}
		}
	}
	return entries, nil
}

func relativeName(name string) (string, error) {
	if !path.IsAbs(name) {
		return "", fmt.Errorf("layer path %q is not absolute", name)
	}
	rel := strings.TrimPrefix(path.Clean(name), "/")
	if rel == "" {
		return "", fmt.Errorf("layer path %q is the root", name)
	}
	return rel, nil
}

func writeEntry(tw *tar.Writer, name string, file File) error {
	header := &tar.Header{
		Name:    name,
		Mode:    tarMode(file.Mode),
		ModTime: epoch,
	}
	if file.Mode.IsDir() {
		header.Typeflag = tar.TypeDir
		header.Name += "/"
	} else {
		header.Typeflag = tar.TypeReg
		header.Size = int64(len(file.Data))
	}
	if err := tw.WriteHeader(header); err != nil {
		return fmt.Errorf("writing tar header of %s: %w", name, err)
	}
	if _, err := tw.Write(file.Data); err != nil {
		return fmt.Errorf("writing %s into the layer: %w", name, err)
	}
	return nil
}

// tarMode converts Go's file mode bits to the Unix bits tar stores.
func tarMode(mode fs.FileMode) int64 {
	bits := int64(mode.Perm())
	if mode&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if mode&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if mode&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	return bits
}
