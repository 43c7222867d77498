package istio

import (
	"fmt"
	"io/fs"
	"path"
	"sync"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"sigs.k8s.io/yaml"

	istio130 "github.com/meshwright/istio-1.30/manifests"
	istio131 "github.com/meshwright/istio-1.31/manifests"
)

// chartSources maps a catalog chart source to Istio's embedded manifests of that minor. Each is the module
// istio.io/istio at a pinned commit, aliased in go.mod so that two minors live in one binary.
var chartSources = map[string]fs.FS{
	"istio-1.30": istio130.FS,
	"istio-1.31": istio131.FS,
}

// Chart names, relative to the manifests' charts/ directory.
const (
	ChartBase   = "base"
	ChartIstiod = "istio-control/istio-discovery"
)

type chartKey struct{ source, name string }

var (
	chartsMu sync.Mutex
	charts   = map[chartKey]*chart.Chart{}
)

// LoadChart returns a chart of a version, loading it from the embedded files the first time only. The returned chart
// is shared: callers must not modify it.
func LoadChart(v Version, name string) (*chart.Chart, error) {
	chartsMu.Lock()
	defer chartsMu.Unlock()
	key := chartKey{v.Charts, name}
	if c, ok := charts[key]; ok {
		return c, nil
	}
	src, ok := chartSources[v.Charts]
	if !ok {
		return nil, fmt.Errorf("unknown chart source %q", v.Charts)
	}
	root := path.Join("charts", name)
	var files []*loader.BufferedFile
	err := fs.WalkDir(src, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(src, p)
		if err != nil {
			return err
		}
		rel := p[len(root)+1:]
		files = append(files, &loader.BufferedFile{Name: rel, Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading chart %s of Istio %s: %w", name, v.Version, err)
	}
	c, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("loading chart %s of Istio %s: %w", name, v.Version, err)
	}
	charts[key] = c
	return c, nil
}

// ProfileValues returns the chart values of an Istio profile, as the charts' own files/profile-<name>.yaml hold
// them. The profiles "default", "minimal" and "empty" differ only in which components they enable, which Meshwright
// decides itself, so they add no values.
func ProfileValues(c *chart.Chart, profile string) (map[string]any, error) {
	switch profile {
	case "", "default", "minimal", "empty":
		return map[string]any{}, nil
	}
	name := "files/profile-" + profile + ".yaml"
	for _, f := range c.Files {
		if f.Name == name {
			out := map[string]any{}
			if err := yaml.Unmarshal(f.Data, &out); err != nil {
				return nil, fmt.Errorf("profile %s: %w", profile, err)
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("chart %s has no profile %q", c.Name(), profile)
}
