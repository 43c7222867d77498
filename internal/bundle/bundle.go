// Package bundle owns Meshwright's OLM delivery: it renders config/ (config/manifests, with kustomize's Go API) and
// the Istio version catalog into a registry+v1 bundle (bundle/, bundle.Dockerfile) and a file-based catalog
// (catalog/meshwright/), and it checks a bundle and a catalog against the rules OLM's own tooling enforces
// (shared/DELIVERY.md). config/ stays the single source of truth: nothing here hard-codes RBAC rules, the Deployment
// or the samples, and nothing here edits config/.
package bundle

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/blang/semver/v4"
)

// PackageName is the OLM package, the prefix of every CSV name.
const PackageName = "meshwright"

// MinKubeVersion is the oldest Kubernetes the operator supports.
const MinKubeVersion = "1.30.0"

// Paths of the generated outputs, relative to the repository root. Each directory is replaced as a whole.
const (
	ManifestsDir   = "bundle/manifests"
	MetadataDir    = "bundle/metadata"
	TestsDir       = "bundle/tests"
	CatalogDir     = "catalog/" + PackageName
	DockerfilePath = "bundle.Dockerfile"
	BundleDir      = "bundle"
	CatalogFile    = CatalogDir + "/catalog.yaml"
	csvFile        = ManifestsDir + "/" + PackageName + ".clusterserviceversion.yaml"
	annotationsYML = MetadataDir + "/annotations.yaml"
	scorecardFile  = TestsDir + "/scorecard/config.yaml"
)

// generatedUnits are what Write replaces; every generated file lives in one of them.
var generatedUnits = []string{ManifestsDir, MetadataDir, TestsDir, CatalogDir, DockerfilePath}

// Options are the inputs `make bundle` passes; everything else comes from config/ and the version catalog.
type Options struct {
	// Version is the operator's semver, without a leading "v".
	Version string
	// Image is the operator image the CSV's Deployment runs.
	Image string
	// BundleImage is where the bundle image is pushed; the catalog points at it. Empty derives
	// "<Image repository>-bundle:v<Version>".
	BundleImage string
	// Channels the bundle is published in; the first is the default unless DefaultChannel is set.
	Channels       []string
	DefaultChannel string
	// Replaces is the CSV this one upgrades from (meshwright.v<semver>), optional.
	Replaces string
}

// CheckVersion returns the one-line error `make bundle` prints when VERSION is not strict semver.
func CheckVersion(version string) error {
	if _, err := semver.Parse(version); err != nil {
		return fmt.Errorf("VERSION must be semver (e.g. 0.1.0), got %q", version)
	}
	return nil
}

// complete checks the options and fills the derived ones.
func (o Options) complete() (Options, error) {
	if err := CheckVersion(o.Version); err != nil {
		return o, err
	}
	if o.Image == "" {
		return o, errors.New("the operator image is required")
	}
	if len(o.Channels) == 0 {
		return o, errors.New("at least one channel is required")
	}
	if o.DefaultChannel == "" {
		o.DefaultChannel = o.Channels[0]
	}
	if !slices.Contains(o.Channels, o.DefaultChannel) {
		return o, fmt.Errorf("default channel %q is not one of the channels %v", o.DefaultChannel, o.Channels)
	}
	if o.Replaces != "" {
		if _, err := versionFromCSVName(o.Replaces); err != nil {
			return o, fmt.Errorf("replaces: %w", err)
		}
	}
	if o.BundleImage == "" {
		name, _, _ := splitImage(o.Image)
		o.BundleImage = name + "-bundle:v" + o.Version
	}
	return o, nil
}

// CSVName is the CSV name of a version: meshwright.v0.1.0.
func CSVName(version string) string { return PackageName + ".v" + version }

// versionFromCSVName parses "<package>.v<semver>".
func versionFromCSVName(name string) (semver.Version, error) {
	prefix := PackageName + ".v"
	if !strings.HasPrefix(name, prefix) {
		return semver.Version{}, fmt.Errorf("%q is not of the form %s<semver>", name, prefix)
	}
	v, err := semver.Parse(strings.TrimPrefix(name, prefix))
	if err != nil {
		return semver.Version{}, fmt.Errorf("%q is not of the form %s<semver>: %w", name, prefix, err)
	}
	return v, nil
}

// Files are generated files by slash-separated path relative to the repository root.
type Files map[string][]byte

// Generate renders config/ under root into the bundle, its Dockerfile and the catalog. It is pure apart from
// reading config/: the same inputs give the same bytes.
func Generate(root string, opts Options) (Files, error) {
	opts, err := opts.complete()
	if err != nil {
		return nil, err
	}
	objects, err := renderConfig(root, opts.Image)
	if err != nil {
		return nil, err
	}
	parts, err := classify(objects)
	if err != nil {
		return nil, err
	}
	csv, err := buildCSV(parts, opts)
	if err != nil {
		return nil, err
	}
	files := Files{}
	if err := addManifests(files, csv, parts); err != nil {
		return nil, err
	}
	if err := addMetadata(files, opts); err != nil {
		return nil, err
	}
	catalog, err := buildCatalog(csv, parts, opts)
	if err != nil {
		return nil, err
	}
	files[CatalogFile] = catalog
	return files, nil
}
