package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/meshwright/meshwright/internal/ociimage"
)

// managerPlatforms are the platforms of the manager image: the nodes Kubernetes distributions ship.
var managerPlatforms = []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}

func managerCommand(ctx context.Context, args []string, stdout io.Writer) error {
	flags := newFlags("manager")
	out := flags.String("out", "bin/image", "OCI image layout directory to write (replaced as a whole)")
	pkg := flags.String("package", ".", "Go package of the manager")
	var meta ociimage.Metadata
	flags.StringVar(&meta.Version, "version", "0.1.0", "image version: org.opencontainers.image.version and the layout's tag")
	flags.StringVar(&meta.Revision, "revision", "", "source revision (git commit) for org.opencontainers.image.revision")
	flags.StringVar(&meta.Source, "source", "https://github.com/meshwright/meshwright", "source repository URL")
	if err := parse(flags, args); err != nil {
		return err
	}
	meta.Title = "Meshwright"
	meta.Description = "Kubernetes operator that installs and runs an Istio service mesh from one ServiceMesh resource"
	meta.Licenses = "Apache-2.0"

	binaries, err := buildManager(ctx, *pkg, managerPlatforms)
	if err != nil {
		return err
	}
	idx, err := ociimage.ManagerIndex(binaries, meta)
	if err != nil {
		return err
	}
	if err := ociimage.WriteLayout(*out, idx, meta.Version); err != nil {
		return err
	}
	return printIndex(stdout, *out, idx)
}

// buildManager cross-compiles pkg statically for each platform: no cgo (the image has no libc), no local paths, no
// symbol tables.
func buildManager(ctx context.Context, pkg string, platforms []v1.Platform) ([]ociimage.Binary, error) {
	dir, err := os.MkdirTemp("", "meshwright-manager-")
	if err != nil {
		return nil, fmt.Errorf("creating a build directory: %w", err)
	}
	defer os.RemoveAll(dir)
	binaries := make([]ociimage.Binary, 0, len(platforms))
	for _, platform := range platforms {
		out := filepath.Join(dir, "manager-"+platform.OS+"-"+platform.Architecture)
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+platform.OS, "GOARCH="+platform.Architecture)
		if output, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s for %s: %w: %s", pkg, platform.String(), err, output)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			return nil, fmt.Errorf("reading the %s manager: %w", platform.String(), err)
		}
		binaries = append(binaries, ociimage.Binary{Platform: platform, Data: data})
	}
	return binaries, nil
}

// printIndex prints the index digest (the one a registry serves for the pushed tag) and each platform's.
func printIndex(stdout io.Writer, dir string, idx v1.ImageIndex) error {
	digest, err := idx.Digest()
	if err != nil {
		return fmt.Errorf("computing the index digest: %w", err)
	}
	manifest, err := idx.IndexManifest()
	if err != nil {
		return fmt.Errorf("reading the index: %w", err)
	}
	lines := []string{fmt.Sprintf("%s: index %s", dir, digest)}
	for _, desc := range manifest.Manifests {
		size, err := compressedLayersSize(idx, desc.Digest)
		if err != nil {
			return err
		}
		lines = append(lines, fmt.Sprintf("  %-12s %s (layer %.1f MiB)", desc.Platform.String(), desc.Digest,
			float64(size)/(1<<20)))
	}
	_, err = fmt.Fprintln(stdout, strings.Join(lines, "\n"))
	return err
}

func compressedLayersSize(idx v1.ImageIndex, digest v1.Hash) (int64, error) {
	img, err := idx.Image(digest)
	if err != nil {
		return 0, fmt.Errorf("reading image %s: %w", digest, err)
	}
	manifest, err := img.Manifest()
	if err != nil {
		return 0, fmt.Errorf("reading image %s: %w", digest, err)
	}
	var size int64
	for _, layer := range manifest.Layers {
		size += layer.Size
	}
	return size, nil
}
