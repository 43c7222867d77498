// Command bundle generates Meshwright's OLM bundle (bundle/, bundle.Dockerfile) and file-based catalog
// (catalog/meshwright/) from config/, validates them, and only then moves them into place. `make bundle` runs it.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/meshwright/meshwright/internal/bundle"
)

func main() {
	var opts bundle.Options
	var channels, root string
	flag.StringVar(&opts.Version, "version", "", "operator version, semver without a leading v (e.g. 0.1.0)")
	flag.StringVar(&opts.Image, "image", "", "operator image the CSV deploys (e.g. meshwright/meshwright:v0.1.0)")
	flag.StringVar(&opts.BundleImage, "bundle-image", "", "bundle image the catalog points at (default <image repository>-bundle:v<version>)")
	flag.StringVar(&channels, "channels", "candidate", "comma-separated channels the bundle is published in")
	flag.StringVar(&opts.DefaultChannel, "default-channel", "", "default channel (default: the first channel)")
	flag.StringVar(&opts.Replaces, "replaces", "", "CSV this version upgrades from (e.g. meshwright.v0.0.9)")
	flag.StringVar(&root, "root", ".", "repository root")
	flag.Parse()

	if err := bundle.CheckVersion(opts.Version); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for _, ch := range strings.Split(channels, ",") {
		if ch = strings.TrimSpace(ch); ch != "" {
			opts.Channels = append(opts.Channels, ch)
		}
	}
	files, err := bundle.Generate(root, opts)
	if err == nil {
		err = bundle.Write(root, files)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bundle: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("Wrote %s/, %s and %s (%d files) for %s\n", bundle.BundleDir, bundle.DockerfilePath, bundle.CatalogFile,
		len(files), bundle.CSVName(opts.Version))
}
