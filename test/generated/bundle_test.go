package generated

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshwright/meshwright/internal/bundle"
)

// TestBundleIsCurrent regenerates the OLM bundle and catalog from config/ with the options the checked-in bundle
// declares (version, images, channels, replaces) and requires the same bytes, file for file.
func TestBundleIsCurrent(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	opts, err := bundle.OptionsFromBundle(root)
	if err != nil {
		t.Fatalf("reading the checked-in bundle: %v", err)
	}
	files, err := bundle.Generate(root, opts)
	if err != nil {
		t.Fatalf("generating the bundle: %v", err)
	}
	diffs, err := bundle.Diff(root, files)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) > 0 {
		t.Errorf("bundle/, bundle.Dockerfile or catalog/ are stale: run `make bundle` and commit the result:\n%s",
			strings.Join(diffs, "\n"))
	}
}
