// Command bundle generates Meshwright's OLM bundle (bundle/, bundle.Dockerfile) and file-based catalog
// (catalog/meshwright/) from config/, validates them, and only then moves them into place. `make bundle` runs it.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/meshwright/meshwright/internal/bundle"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run returns the exit code: 2 for bad flags or a VERSION that is not semver, 1 when generation fails.
func run(args []string, stdout, stderr io.Writer) int {
	var opts bundle.Options
	var channels, root string
	flags := flag.NewFlagSet("bundle", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.StringVar(&opts.Version, "version", "", "operator version, semver without a leading v (e.g. 0.1.0)")
	flags.StringVar(&opts.Image, "image", "", "operator image the CSV deploys (e.g. meshwright/meshwright:v0.1.0)")
	flags.StringVar(&opts.BundleImage, "bundle-image", "", "bundle image the catalog points at (default <image repository>-bundle:v<version>)")
	flags.StringVar(&channels, "channels", "candidate", "comma-separated channels the bundle is published in")
	flags.StringVar(&opts.DefaultChannel, "default-channel", "", "default channel (default: the first channel)")
	flags.StringVar(&opts.Replaces, "replaces", "", "CSV this version upgrades from (e.g. meshwright.v0.0.9)")
	flags.StringVar(&root, "root", ".", "repository root")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if err := bundle.CheckVersion(opts.Version); err != nil {
		fmt.Fprintln(stderr, err)
		return 2
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
		fmt.Fprintf(stderr, "bundle: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "Wrote %s/, %s and %s (%d files) for %s\n", bundle.BundleDir, bundle.DockerfilePath,
		bundle.CatalogFile, len(files), bundle.CSVName(opts.Version))
	return 0
}
