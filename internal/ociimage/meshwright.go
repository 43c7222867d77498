package ociimage

import (
	"fmt"
	"io/fs"
	"path"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	// ManagerPath is where the manager binary lives in its image; config/manager runs it as the command.
	ManagerPath = "/manager"
	// NonRootUser is the manager's user and group, numeric so runAsNonRoot can check it (distroless' "nonroot").
	NonRootUser = "65532:65532"
)

// DataPlatform is the platform recorded in files-only images (OLM bundles, file-based catalogs). The image config
// requires an OS and an architecture; the content is data, and container runtimes pull a single-manifest image on any
// node whatever its config says, so one platform serves every node.
var DataPlatform = v1.Platform{OS: "linux", Architecture: "amd64"}

// Metadata is what the org.opencontainers.image.* labels say about a build.
type Metadata struct {
	Source      string
	Version     string
	Revision    string
	Title       string
	Description string
	Licenses    string
}

// Labels returns the OCI annotation keys as image labels, leaving out empty values.
func (m Metadata) Labels() map[string]string {
	labels := map[string]string{}
	for key, value := range map[string]string{
		"org.opencontainers.image.source":      m.Source,
		"org.opencontainers.image.version":     m.Version,
		"org.opencontainers.image.revision":    m.Revision,
		"org.opencontainers.image.title":       m.Title,
		"org.opencontainers.image.description": m.Description,
		"org.opencontainers.image.licenses":    m.Licenses,
	} {
		if value != "" {
			labels[key] = value
		}
	}
	return labels
}

// Binary is the manager compiled for one platform.
type Binary struct {
	Platform v1.Platform
	Data     []byte
}

// ManagerIndex builds the manager's multi-platform image: per binary, an image holding only /manager, run as a
// numeric non-root user.
func ManagerIndex(binaries []Binary, meta Metadata) (v1.ImageIndex, error) {
	images := make([]v1.Image, 0, len(binaries))
	for _, binary := range binaries {
		img, err := Image(map[string]File{ManagerPath: {Data: binary.Data, Mode: 0o755}}, Config{
			Platform:   binary.Platform,
			Entrypoint: []string{ManagerPath},
			User:       NonRootUser,
			WorkingDir: "/",
			Labels:     meta.Labels(),
		})
		if err != nil {
			return nil, fmt.Errorf("building the manager image for %s: %w", binary.Platform.String(), err)
		}
		images = append(images, img)
	}
	return Index(images...)
}

// DataImage builds a files-only image: no entrypoint, labels (for OLM, the bundle annotations or the catalog's
// operators.operatorframework.io.index.configs.v1) and the files.
func DataImage(files map[string]File, labels map[string]string) (v1.Image, error) {
	return Image(files, Config{Platform: DataPlatform, Labels: labels})
}

// Index assembles images into an OCI index, one entry per platform read from each image's config, sorted by platform
// so that the order of the arguments does not change the digest.
func Index(images ...v1.Image) (v1.ImageIndex, error) {
	adds := make([]mutate.IndexAddendum, 0, len(images))
	seen := map[string]bool{}
	for _, img := range images {
		platform, err := imagePlatform(img)
		if err != nil {
			return nil, err
		}
		if seen[platform.String()] {
			return nil, fmt.Errorf("assembling index: platform %s given twice", platform.String())
		}
		seen[platform.String()] = true
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: platform}})
	}
	if len(adds) == 0 {
		return nil, fmt.Errorf("assembling index: no images")
	}
	sort.Slice(adds, func(i, j int) bool {
		return adds[i].Descriptor.Platform.String() < adds[j].Descriptor.Platform.String()
	})
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...), nil
}

func imagePlatform(img v1.Image) (*v1.Platform, error) {
	configFile, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading image config: %w", err)
	}
	if configFile.OS == "" || configFile.Architecture == "" {
		return nil, fmt.Errorf("image config has no OS or architecture")
	}
	return &v1.Platform{OS: configFile.OS, Architecture: configFile.Architecture, Variant: configFile.Variant}, nil
}

// DirFiles reads a directory tree from fsys into image files under dest. Modes are normalised (0755 for directories
// and files with any execute bit, 0644 for other files) so that the digest does not depend on the checkout's umask.
// Symbolic links and other special files are refused.
func DirFiles(fsys fs.FS, dest string, into map[string]File) error {
	return fs.WalkDir(fsys, ".", func(name string, entry fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
		target := path.Join(dest, name)
		existing, dup := into[target]
		switch {
		case entry.IsDir() && (!dup || existing.Mode.IsDir()):
			into[target] = File{Mode: fs.ModeDir | 0o755}
			return nil
		case dup:
			return fmt.Errorf("image path %s given twice", target)
		case !entry.Type().IsRegular():
			return fmt.Errorf("%s is not a regular file or directory", name)
		}
		info, err := entry.Info()
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
		mode := fs.FileMode(0o644)
		if info.Mode().Perm()&0o111 != 0 {
			mode = 0o755
		}
		into[target] = File{Data: data, Mode: mode}
		return nil
	})
}
