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
}

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

// Resolve turns spec.version (exact, minor alias, "latest" or empty) into a supported version as of now.
func (c *Catalog) Resolve(requested string, now time.Time) (Version, error) {
	unsupported := func(reason string) error {
		return &UnsupportedVersionError{Requested: requested, Reason: reason, Supported: c.supported(now)}
	}
	var candidates []Version
	switch {
	case requested == "" || requested == "latest":
		candidates = c.Versions
	case strings.Count(requested, ".") == 1:
		for _, v := range c.Versions {
			if minorOf(v.Version) == requested {
				candidates = append(candidates, v)
			}
		}
	default:
		for _, v := range c.Versions {
			if v.Version == requested {
				candidates = append(candidates, v)
			}
		}
	}
	if len(candidates) == 0 {
		return Version{}, unsupported("is not supported by this version of Meshwright")
	}
	for _, v := range candidates {
		if !v.endOfLife(now) {
			return v, nil
		}
	}
	return Version{}, unsupported("is past its end of life")
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
