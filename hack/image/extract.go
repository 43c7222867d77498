package main

import (
	"context"
	"fmt"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/meshwright/meshwright/internal/ociimage"
)

func extractCommand(_ context.Context, args []string, stdout io.Writer) error {
	flags := newFlags("extract")
	dir := flags.String("layout", "bin/image", "OCI image layout directory to read")
	platformArg := flags.String("platform", "linux/amd64", "platform whose image to read, os/arch")
	file := flags.String("file", "/manager", "absolute path of the file in the image")
	to := flags.String("to", "", "where to write the file (mode 0755)")
	if err := parse(flags, args); err != nil {
		return err
	}
	if *to == "" {
		return usageError{message: "extract: --to is required"}
	}
	platform, err := v1.ParsePlatform(*platformArg)
	if err != nil {
		return usageError{message: fmt.Sprintf("extract: --platform %q: %v", *platformArg, err)}
	}
	data, err := ociimage.ExtractFile(*dir, *platform, *file)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*to, data, 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", *to, err)
	}
	_, err = fmt.Fprintf(stdout, "%s: %s for %s (%d bytes)\n", *to, *file, platform.String(), len(data))
	return err
}
