package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/meshwright/meshwright/internal/ociimage"
)

func filesCommand(_ context.Context, args []string, stdout io.Writer) error {
	flags := newFlags("files")
	out := flags.String("out", "", "OCI image layout directory to write (replaced as a whole)")
	tag := flags.String("tag", "", "the layout's tag (org.opencontainers.image.ref.name), e.g. the version")
	labelsFrom := flags.String("labels-from", "", "YAML file whose top-level annotations map becomes labels (an OLM bundle's metadata/annotations.yaml)")
	var labelArgs, dirArgs listFlag
	flags.Var(&labelArgs, "label", "label key=value (repeatable; wins over --labels-from)")
	flags.Var(&dirArgs, "dir", "source directory and absolute destination in the image, src:/dest (repeatable)")
	if err := parse(flags, args); err != nil {
		return err
	}
	if *out == "" || len(dirArgs) == 0 {
		return usageError{message: "files: --out and at least one --dir src:/dest are required"}
	}
	labels, err := collectLabels(*labelsFrom, labelArgs)
	if err != nil {
		return err
	}
	files, err := collectFiles(dirArgs)
	if err != nil {
		return err
	}
	img, err := ociimage.DataImage(files, labels)
	if err != nil {
		return err
	}
	if err := ociimage.WriteLayout(*out, img, *tag); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("computing the image digest: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "%s: image %s (%s, %d files and directories)\n", *out, digest, ociimage.DataPlatform.String(), len(files))
	return err
}

func collectLabels(annotationsFile string, labelArgs []string) (map[string]string, error) {
	labels := map[string]string{}
	if annotationsFile != "" {
		data, err := os.ReadFile(annotationsFile)
		if err != nil {
			return nil, fmt.Errorf("reading labels: %w", err)
		}
		var doc struct {
			Annotations map[string]string `json:"annotations"`
		}
		if err := yaml.UnmarshalStrict(data, &doc); err != nil {
			return nil, fmt.Errorf("reading labels from %s: %w", annotationsFile, err)
		}
		if len(doc.Annotations) == 0 {
			return nil, fmt.Errorf("reading labels from %s: no annotations", annotationsFile)
		}
		for key, value := range doc.Annotations {
			labels[key] = value
		}
	}
	for _, arg := range labelArgs {
		key, value, ok := strings.Cut(arg, "=")
		if !ok || key == "" {
			return nil, usageError{message: fmt.Sprintf("files: --label %q is not key=value", arg)}
		}
		labels[key] = value
	}
	return labels, nil
}

func collectFiles(dirArgs []string) (map[string]ociimage.File, error) {
	files := map[string]ociimage.File{}
	for _, arg := range dirArgs {
		src, dest, ok := strings.Cut(arg, ":")
		if !ok || src == "" || !path.IsAbs(dest) {
			return nil, usageError{message: fmt.Sprintf("files: --dir %q is not src:/absolute/dest", arg)}
		}
		info, err := os.Stat(src)
		if err != nil {
			return nil, fmt.Errorf("--dir %s: %w", src, err)
		}
		if !info.IsDir() {
			return nil, fmt.Errorf("--dir %s: not a directory", src)
		}
		if err := ociimage.DirFiles(os.DirFS(src), dest, files); err != nil {
			return nil, fmt.Errorf("adding %s as %s: %w", src, dest, err)
		}
	}
	return files, nil
}
