// Package istio owns the Istio side of Meshwright: the version catalog (versions.yaml), the charts embedded from
// Istio's own Go module for each supported minor, and loading them once. It renders nothing itself and does no I/O
// beyond reading embedded files.
package istio

import (
	_ "embed"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

//go:embed versions.yaml
var versionsYAML []byte

// Version is one supported Istio version.
type Version struct {
	// Version is the exact Istio version, e.g. 1.31.0.
	Version string `json:"version"`
	// Charts names the chart source (see charts.go).
	Charts string `json:"charts"`
	// EndOfLife is the date after which the version is refused for new renders (YYYY-MM-DD).
	EndOfLife string `json:"endOfLife"`
	// Addons are the images of the observability add-ons tested with this version (prometheus, grafana, jaeger,
	// kiali), as full references.
	Addons map[string]string `json:"addons,omitempty"`
}

// AddonNames are the keys of a version's addons.
var AddonNames = []string{"grafana", "jaeger", "kiali", "prometheus"}

// Catalog is the parsed versions.yaml.
type Catalog struct {
	Hub    string            `json:"hub"`
	Images map[string]string `json:"images"`
	// Versions, newest first.
	Versions []Version `json:"versions"`
}

// DefaultCatalog is the catalog embedded in this build.
var DefaultCatalog = mustLoadCatalog(versionsYAML)

func mustLoadCatalog(data []byte) *Catalog {
	c, err := LoadCatalog(data)
	if err != nil {
		panic(fmt.Sprintf("embedded versions.yaml: %v", err))
	}
	return c
}

// LoadCatalog parses and checks a catalog.
func LoadCatalog(data []byte) (*Catalog, error) {
	c := &Catalog{}
	if err := yaml.UnmarshalStrict(data, c); err != nil {
		return nil, err
	}
	if c.Hub == "" || c.Images["pilot"] == "" || c.Images["proxy"] == "" {
		return nil, fmt.Errorf("hub and the pilot and proxy images are required")
	}
	for _, v := range c.Versions {
		if _, err := parseSemver(v.Version); err != nil {
			return nil, fmt.Errorf("version %q: %w", v.Version, err)
		}
		if _, err := time.Parse(time.DateOnly, v.EndOfLife); err != nil {
			return nil, fmt.Errorf("version %s: endOfLife: %w", v.Version, err)
		}
		if _, ok := chartSources[v.Charts]; !ok {
			return nil, fmt.Errorf("version %s: unknown chart source %q", v.Version, v.Charts)
		}
	}
	sort.SliceStable(c.Versions, func(i, j int) bool {
		a, _ := parseSemver(c.Versions[i].Version)
		b, _ := parseSemver(c.Versions[j].Version)
		return a.newerThan(b)
	})
	return c, nil
}

// UnsupportedVersionError says a requested version is not in the catalog or past its end of life.
type UnsupportedVersionError struct {
	Requested string
	Reason    string
	Supported []string
}

func (e *UnsupportedVersionError) Error() string {
	return fmt.Sprintf("spec.version %q %s; supported versions: %s (or a minor alias such as %q, or \"latest\")",
		e.Requested, e.Reason, strings.Join(e.Supported, ", "), minorOf(e.Supported[0]))
}

// Resolve turns spec.version (exact, minor alias, "latest" or empty) into a supported version as of now, for a mesh
// that runs nothing yet.
func (c *Catalog) Resolve(requested string, now time.Time) (Version, error) {
	res, err := c.ResolveRunning(requested, "", now)
	return res.Version, err
}

// Resolution is spec.version resolved for a mesh.
type Resolution struct {
	Version
	// Pinned is true when spec.version floats (empty or "latest") and the mesh keeps the minor it runs.
	Pinned bool
	// PastEndOfLife is true when the version is past its end of life, which only a mesh already running its minor
	// is given.
	PastEndOfLife bool
}

// ResolveRunning turns spec.version into a catalog version for a mesh that runs the exact version running ("" when it
// runs nothing yet). An empty spec.version or "latest" keeps the minor the mesh runs, following its newest patch, so
// that upgrading Meshwright never moves a mesh to another minor; a mesh that runs nothing gets the newest version.
// End of life refuses only a minor the mesh does not run yet: the clock never stops a running mesh, the caller
// warns instead (PastEndOfLife).
func (c *Catalog) ResolveRunning(requested, running string, now time.Time) (Resolution, error) {
	pinned := (requested == "" || requested == "latest") && running != ""
	query := requested
	if pinned {
		query = minorOf(running)
	}
	unsupported := func(reason string) error {
		return &UnsupportedVersionError{Requested: requested, Reason: reason, Supported: c.supported(now)}
	}
	candidates := c.candidates(query)
	if len(candidates) == 0 {
		if pinned {
			return Resolution{}, unsupported(fmt.Sprintf("keeps the Istio minor the mesh runs (%s), which this version "+
				"of Meshwright does not support; set spec.version to a supported minor to move the mesh", running))
		}
		return Resolution{}, unsupported("is not supported by this version of Meshwright")
	}
	for _, v := range candidates {
		if !v.endOfLife(now) {
			return Resolution{Version: v, Pinned: pinned}, nil
		}
	}
	if running != "" && minorOf(running) == candidates[0].Minor() {
		return Resolution{Version: candidates[0], Pinned: pinned, PastEndOfLife: true}, nil
	}
	return Resolution{}, unsupported("is past its end of life")
}

// candidates returns the versions a spec.version names, newest first: all of them for "" and "latest".
func (c *Catalog) candidates(requested string) []Version {
	var out []Version
	for _, v := range c.Versions {
		switch {
		case requested == "" || requested == "latest",
			strings.Count(requested, ".") == 1 && v.Minor() == requested,
			v.Version == requested:
			out = append(out, v)
		}
	}
	return out
}

// Lookup returns the catalog entry of an exact version, whatever its end of life: a revision that already runs it
// keeps being rendered.
func (c *Catalog) Lookup(exact string) (Version, bool) {
	for _, v := range c.Versions {
		if v.Version == exact {
			return v, true
		}
	}
	return Version{}, false
}

// Images returns the image references of a version, keyed like versions.yaml's images.
func (c *Catalog) Image(component string, v Version) string {
	return fmt.Sprintf("%s/%s:%s", c.Hub, c.Images[component], v.Version)
}

func (c *Catalog) supported(now time.Time) []string {
	var out []string
	for _, v := range c.Versions {
		if !v.endOfLife(now) {
			out = append(out, v.Version)
		}
	}
	if len(out) == 0 {
		out = []string{"none"}
	}
	return out
}

func (v Version) endOfLife(now time.Time) bool {
	eol, _ := time.Parse(time.DateOnly, v.EndOfLife)
	return !now.Before(eol.Add(24 * time.Hour))
}

// Minor is "1.31" for "1.31.0".
func (v Version) Minor() string { return minorOf(v.Version) }

// RevisionSuffix is "1-31-0" for "1.31.0", the form revision names use.
func (v Version) RevisionSuffix() string { return strings.ReplaceAll(v.Version, ".", "-") }

// CompareVersions compares two exact versions ("1.30.4") by semantic version: -1, 0 or +1. A version that does not
// parse sorts before every one that does.
func CompareVersions(a, b string) int {
	va, errA := parseSemver(a)
	vb, errB := parseSemver(b)
	switch {
	case errA != nil && errB != nil:
		return strings.Compare(a, b)
	case errA != nil:
		return -1
	case errB != nil:
		return 1
	case va.newerThan(vb):
		return 1
	case vb.newerThan(va):
		return -1
	}
	return 0
}

func minorOf(version string) string {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return version
	}
	return parts[0] + "." + parts[1]
}

type semver [3]int

func parseSemver(s string) (semver, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return semver{}, fmt.Errorf("want MAJOR.MINOR.PATCH")
	}
	var v semver
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return semver{}, fmt.Errorf("want MAJOR.MINOR.PATCH: %w", err)
		}
		v[i] = n
	}
	return v, nil
}

func (a semver) newerThan(b semver) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return false
}
