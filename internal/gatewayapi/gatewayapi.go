// Package gatewayapi owns the Kubernetes Gateway API CRDs that Meshwright installs for a ServiceMesh with
// spec.gatewayAPI.installCRDs: the standard channel of the sigs.k8s.io/gateway-api module that go.mod requires,
// generated from its Go types by hack/gatewayapi into crds/ and embedded here, and the rule that decides which live
// Gateway API CRDs are someone else's. It neither reads nor writes the cluster: callers pass live objects in.
package gatewayapi

import (
	"bytes"
	"embed"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

const (
	// Group is the API group of every Gateway API CRD in the standard channel.
	Group = "gateway.networking.k8s.io"
	// BundleVersionAnnotation names the Gateway API release a CRD comes from.
	BundleVersionAnnotation = "gateway.networking.k8s.io/bundle-version"
	// ChannelAnnotation names the release channel a CRD comes from: standard or experimental.
	ChannelAnnotation = "gateway.networking.k8s.io/channel"
	// Channel is the only channel Meshwright installs. The experimental channel's CRDs are supersets of the standard
	// ones; replacing them would drop fields that stored objects and other controllers use.
	Channel = "standard"
	// ChannelExperimental is the channel whose live CRDs Meshwright never replaces.
	ChannelExperimental = "experimental"
	// LabelOwner is the label Meshwright puts on everything it applies (the value is the ServiceMesh's name); it is
	// render.LabelOwner, repeated so that this package stays free of the renderer's dependencies.
	LabelOwner = "mesh.meshwright.dev/owner"
)

//go:embed crds/*.yaml
var files embed.FS

type bundle struct {
	crds    []*unstructured.Unstructured
	version string
}

var load = sync.OnceValues(parse)

// CRDs returns the embedded CRDs sorted by name. Each call returns new copies the caller may change.
func CRDs() ([]*unstructured.Unstructured, error) {
	b, err := load()
	if err != nil {
		return nil, err
	}
	out := make([]*unstructured.Unstructured, len(b.crds))
	for i, c := range b.crds {
		out[i] = c.DeepCopy()
	}
	return out, nil
}

// BundleVersion returns the Gateway API release the embedded CRDs come from (e.g. v1.6.3).
func BundleVersion() (string, error) {
	b, err := load()
	if err != nil {
		return "", err
	}
	return b.version, nil
}

// Names returns the sorted names of the embedded CRDs, for RBAC resourceNames. They follow from the file names
// (<group>_<plural>.yaml), which the generator derives from the same fields as the CRD's name.
func Names() []string {
	entries, err := files.ReadDir("crds")
	if err != nil {
		// The directory is embedded at build time; a read failure is a broken binary, not a runtime condition.
		panic(fmt.Sprintf("reading the embedded Gateway API CRDs: %v", err))
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		base := strings.TrimSuffix(e.Name(), ".yaml")
		group, plural, ok := strings.Cut(base, "_")
		if !ok {
			panic(fmt.Sprintf("embedded Gateway API CRD file %s is not named <group>_<plural>.yaml", e.Name()))
		}
		names = append(names, plural+"."+group)
	}
	slices.Sort(names)
	return names
}

func parse() (bundle, error) {
	entries, err := files.ReadDir("crds")
	if err != nil {
		return bundle{}, fmt.Errorf("reading the embedded Gateway API CRDs: %w", err)
	}
	var b bundle
	for _, e := range entries {
		crd, err := parseFile(path.Join("crds", e.Name()))
		if err != nil {
			return bundle{}, err
		}
		version := crd.GetAnnotations()[BundleVersionAnnotation]
		if b.version != "" && version != b.version {
			return bundle{}, fmt.Errorf("embedded Gateway API CRDs of two bundles: %s and %s", b.version, version)
		}
		b.version = version
		b.crds = append(b.crds, crd)
	}
	if b.version == "" {
		return bundle{}, fmt.Errorf("no embedded Gateway API CRD carries %s", BundleVersionAnnotation)
	}
	slices.SortFunc(b.crds, func(x, y *unstructured.Unstructured) int { return strings.Compare(x.GetName(), y.GetName()) })
	return b, nil
}

func parseFile(name string) (*unstructured.Unstructured, error) {
	raw, err := files.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	// Decoding through JSON keeps integers int64, as the API server's objects are, so comparing with live CRDs works.
	body, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", name, err)
	}
	crd := &unstructured.Unstructured{}
	if err := crd.UnmarshalJSON(bytes.TrimSpace(body)); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", name, err)
	}
	if crd.GetKind() != "CustomResourceDefinition" {
		return nil, fmt.Errorf("%s holds a %s, not a CustomResourceDefinition", name, crd.GetKind())
	}
	return crd, nil
}
