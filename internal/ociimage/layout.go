package ociimage

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// refNameAnnotation names the layout's one entry, so that tools addressing "oci:DIR:TAG" (skopeo, oras) find it.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// WriteLayout replaces dir with an OCI image layout whose index.json has exactly one entry: artifact, a v1.ImageIndex
// or a v1.Image, tagged refName when it is not empty. The layout is written to a temporary directory next to dir and
// renamed into place, so readers see the old layout or the new one, never a half-written mix, and a failed write
// leaves the old layout as it was.
func WriteLayout(dir string, artifact mutate.Appendable, refName string) error {
	dir = filepath.Clean(dir)
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".new-")
	if err != nil {
		return fmt.Errorf("creating a temporary layout next to %s: %w", dir, err)
	}
	if err := writeLayoutTo(tmp, artifact, refName); err != nil {
		return errors.Join(fmt.Errorf("writing OCI layout for %s: %w", dir, err), os.RemoveAll(tmp))
	}
	// MkdirTemp creates 0700; a layout is as readable as any build output.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return errors.Join(fmt.Errorf("writing OCI layout for %s: %w", dir, err), os.RemoveAll(tmp))
	}
	return replaceDir(tmp, dir)
}

func writeLayoutTo(dir string, artifact mutate.Appendable, refName string) error {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	var options []layout.Option
	if refName != "" {
		options = append(options, layout.WithAnnotations(map[string]string{refNameAnnotation: refName}))
	}
	switch a := artifact.(type) {
	case v1.ImageIndex:
		return p.AppendIndex(a, options...)
	case v1.Image:
		return p.AppendImage(a, options...)
	default:
		return fmt.Errorf("%T is neither an image nor an index", artifact)
	}
}

// replaceDir renames fresh to dir. An existing dir is first moved aside and removed only once fresh is in place;
// between the two renames (a crash there) the old layout survives under its ".old-" name.
func replaceDir(fresh, dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.Rename(fresh, dir); err != nil {
			return errors.Join(fmt.Errorf("moving the new layout to %s: %w", dir, err), os.RemoveAll(fresh))
		}
		return nil
	}
	old, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".old-")
	if err != nil {
		return errors.Join(fmt.Errorf("replacing %s: %w", dir, err), os.RemoveAll(fresh))
	}
	aside := filepath.Join(old, "layout")
	if err := os.Rename(dir, aside); err != nil {
		return errors.Join(fmt.Errorf("moving the old layout %s aside: %w", dir, err), os.RemoveAll(fresh), os.Remove(old))
	}
	if err := os.Rename(fresh, dir); err != nil {
		restore := os.Rename(aside, dir)
		return errors.Join(fmt.Errorf("moving the new layout to %s: %w", dir, err), restore, os.RemoveAll(fresh))
	}
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("removing the old layout %s: %w", old, err)
	}
	return nil
}

// Artifact is the one image or index an OCI layout written by WriteLayout holds.
type Artifact struct {
	Descriptor v1.Descriptor
	Index      v1.ImageIndex // set when the entry is an index
	Image      v1.Image      // set when the entry is an image
}

// ReadLayout opens dir and returns its one entry.
func ReadLayout(dir string) (Artifact, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return Artifact{}, fmt.Errorf("opening OCI layout %s: %w", dir, err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		return Artifact{}, fmt.Errorf("reading %s/index.json: %w", dir, err)
	}
	manifest, err := top.IndexManifest()
	if err != nil {
		return Artifact{}, fmt.Errorf("reading %s/index.json: %w", dir, err)
	}
	if len(manifest.Manifests) != 1 {
		return Artifact{}, fmt.Errorf("OCI layout %s has %d entries, want 1", dir, len(manifest.Manifests))
	}
	desc := manifest.Manifests[0]
	artifact := Artifact{Descriptor: desc}
	switch {
	case desc.MediaType.IsIndex():
		artifact.Index, err = top.ImageIndex(desc.Digest)
	case desc.MediaType.IsImage():
		artifact.Image, err = top.Image(desc.Digest)
	default:
		err = fmt.Errorf("unsupported media type %s", desc.MediaType)
	}
	if err != nil {
		return Artifact{}, fmt.Errorf("reading %s from OCI layout %s: %w", desc.Digest, dir, err)
	}
	return artifact, nil
}

// PlatformImage returns the artifact's image for platform: the matching index entry, or the image itself when its
// config names that platform.
func (a Artifact) PlatformImage(platform v1.Platform) (v1.Image, error) {
	if a.Image != nil {
		got, err := imagePlatform(a.Image)
		if err != nil {
			return nil, err
		}
		if !got.Equals(platform) {
			return nil, fmt.Errorf("image %s is for %s, not %s", a.Descriptor.Digest, got.String(), platform.String())
		}
		return a.Image, nil
	}
	manifest, err := a.Index.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading index %s: %w", a.Descriptor.Digest, err)
	}
	for _, desc := range manifest.Manifests {
		if desc.Platform != nil && desc.Platform.Equals(platform) {
			return a.Index.Image(desc.Digest)
		}
	}
	return nil, fmt.Errorf("index %s has no image for %s", a.Descriptor.Digest, platform.String())
}

// ExtractFile returns the content of the regular file at name (an absolute path) in the image for platform held by
// the layout in dir, e.g. /manager for linux/amd64.
func ExtractFile(dir string, platform v1.Platform, name string) ([]byte, error) {
	artifact, err := ReadLayout(dir)
	if err != nil {
		return nil, err
	}
	img, err := artifact.PlatformImage(platform)
	if err != nil {
		return nil, fmt.Errorf("extracting %s from %s: %w", name, dir, err)
	}
	data, err := fileFromImage(img, name)
	if err != nil {
		return nil, fmt.Errorf("extracting %s for %s from %s: %w", name, platform.String(), dir, err)
	}
	return data, nil
}

func fileFromImage(img v1.Image, name string) ([]byte, error) {
	want := strings.TrimPrefix(path.Clean(name), "/")
	flat := mutate.Extract(img)
	defer flat.Close()
	tr := tar.NewReader(flat)
	for {
		header, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("no such file in the image")
		}
		if err != nil {
			return nil, fmt.Errorf("reading image filesystem: %w", err)
		}
		if strings.TrimPrefix(path.Clean(header.Name), "/") != want {
			continue
		}
		if header.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("not a regular file (tar type %q)", header.Typeflag)
		}
		return io.ReadAll(tr)
	}
}
