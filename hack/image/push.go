package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/meshwright/meshwright/internal/ociimage"
)

// pushTarget is what the Makefile calls the image a layout holds: the variable naming its reference and the targets
// that build and push it, for messages that say which command to type.
type pushTarget struct {
	build, push, example string
}

var pushTargets = map[string]pushTarget{
	"IMG":         {build: "docker-build", push: "docker-push", example: "registry.example.com/meshwright:v0.1.0"},
	"BUNDLE_IMG":  {build: "bundle-build", push: "bundle-push", example: "registry.example.com/meshwright-bundle:v0.1.0"},
	"CATALOG_IMG": {build: "catalog-build", push: "catalog-push", example: "registry.example.com/meshwright-catalog:v0.1.0"},
}

func pushCommand(ctx context.Context, args []string, stdout io.Writer) error {
	flags := newFlags("push")
	dir := flags.String("layout", "bin/image", "OCI image layout directory to push")
	ref := flags.String("image", "", "registry reference to push to, e.g. registry.example.com/meshwright:v0.1.0")
	variable := flags.String("var", "IMG", "Makefile variable the reference comes from: IMG, BUNDLE_IMG or CATALOG_IMG")
	if err := parse(flags, args); err != nil {
		return err
	}
	target, ok := pushTargets[*variable]
	if !ok {
		return usageError{message: fmt.Sprintf("push: --var %q is not IMG, BUNDLE_IMG or CATALOG_IMG", *variable)}
	}
	if *ref == "" {
		return usageError{message: fmt.Sprintf("%s is required, e.g. make %s %s=%s", *variable, target.push, *variable, target.example)}
	}
	if _, err := os.Stat(*dir); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s does not exist; build it first with make %s", *dir, target.build)
	}
	digest, err := ociimage.Push(ctx, *dir, *ref)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "pushed %s (%s)\n", *ref, digest)
	return err
}
