package bundle

import (
	"bytes"
	"encoding/json"
	"fmt"

	"sigs.k8s.io/yaml"
)

// The file-based catalog (FBC) schemas, as operator-registry's declcfg reads them.
const (
	schemaPackage = "olm.package"
	schemaChannel = "olm.channel"
	schemaBundle  = "olm.bundle"

	propertyPackage     = "olm.package"
	propertyGVK         = "olm.gvk"
	propertyCSVMetadata = "olm.csv.metadata"
)

// FBCPackage is the olm.package blob.
type FBCPackage struct {
	Schema         string `json:"schema"`
	Name           string `json:"name"`
	DefaultChannel string `json:"defaultChannel"`
	Icon           *Icon  `json:"icon,omitempty"`
	Description    string `json:"description,omitempty"`
}

// FBCChannel is an olm.channel blob: the upgrade graph of one channel.
type FBCChannel struct {
	Schema  string            `json:"schema"`
	Name    string            `json:"name"`
	Package string            `json:"package"`
	Entries []FBCChannelEntry `json:"entries"`
}

// FBCChannelEntry is one bundle in a channel and the bundles it upgrades from.
type FBCChannelEntry struct {
	Name      string   `json:"name"`
	Replaces  string   `json:"replaces,omitempty"`
	Skips     []string `json:"skips,omitempty"`
	SkipRange string   `json:"skipRange,omitempty"`
}

// FBCBundle is an olm.bundle blob.
type FBCBundle struct {
	Schema        string         `json:"schema"`
	Name          string         `json:"name"`
	Package       string         `json:"package"`
	Image         string         `json:"image"`
	Properties    []FBCProperty  `json:"properties,omitempty"`
	RelatedImages []RelatedImage `json:"relatedImages,omitempty"`
}

// FBCProperty is a typed property of a bundle.
type FBCProperty struct {
	Type  string `json:"type"`
	Value any    `json:"value"`
}

type packageProperty struct {
	PackageName string `json:"packageName"`
	Version     string `json:"version"`
}

type gvkProperty struct {
	Group   string `json:"group"`
	Kind    string `json:"kind"`
	Version string `json:"version"`
}

// csvMetadataProperty is what consoles show before the bundle image is pulled; opm's
// bundle-object-to-csv-metadata migration produces the same, and it keeps the catalog smaller than embedding the
// whole CSV and CRDs as olm.bundle.object.
type csvMetadataProperty struct {
	Annotations               map[string]string         `json:"annotations,omitempty"`
	CustomResourceDefinitions CustomResourceDefinitions `json:"crdDescriptions,omitempty"`
	Description               string                    `json:"description,omitempty"`
	DisplayName               string                    `json:"displayName,omitempty"`
	InstallModes              []InstallMode             `json:"installModes,omitempty"`
	Keywords                  []string                  `json:"keywords,omitempty"`
	Links                     []AppLink                 `json:"links,omitempty"`
	Maintainers               []Maintainer              `json:"maintainers,omitempty"`
	Maturity                  string                    `json:"maturity,omitempty"`
	MinKubeVersion            string                    `json:"minKubeVersion,omitempty"`
	Provider                  AppLink                   `json:"provider,omitempty"`
}

// buildCatalog renders catalog/meshwright/catalog.yaml: the package, one channel per --channels entry holding this
// bundle, and the bundle.
func buildCatalog(csv *CSV, p *parts, opts Options) ([]byte, error) {
	docs := []any{FBCPackage{
		Schema:         schemaPackage,
		Name:           PackageName,
		DefaultChannel: opts.DefaultChannel,
		Icon:           &csv.Spec.Icon[0],
		Description:    shortDescription,
	}}
	for _, channel := range opts.Channels {
		docs = append(docs, FBCChannel{
			Schema:  schemaChannel,
			Name:    channel,
			Package: PackageName,
			Entries: []FBCChannelEntry{{
				Name:      csv.Metadata.Name,
				Replaces:  opts.Replaces,
				SkipRange: csv.Metadata.Annotations["olm.skipRange"],
			}},
		})
	}
	docs = append(docs, fbcBundle(csv, p, opts))
	var out bytes.Buffer
	for _, doc := range docs {
		data, err := yaml.Marshal(doc)
		if err != nil {
			return nil, fmt.Errorf("encoding the catalog: %w", err)
		}
		out.WriteString("---\n")
		out.Write(data)
	}
	return out.Bytes(), nil
}

func fbcBundle(csv *CSV, p *parts, opts Options) FBCBundle {
	var properties []FBCProperty
	for _, crd := range p.crds {
		for _, v := range crd.Spec.Versions {
			if v.Served {
				properties = append(properties, FBCProperty{Type: propertyGVK, Value: gvkProperty{
					Group: crd.Spec.Group, Kind: crd.Spec.Names.Kind, Version: v.Name,
				}})
			}
		}
	}
	properties = append(properties,
		FBCProperty{Type: propertyPackage, Value: packageProperty{PackageName: PackageName, Version: opts.Version}},
		FBCProperty{Type: propertyCSVMetadata, Value: csvMetadataProperty{
			Annotations:               csv.Metadata.Annotations,
			CustomResourceDefinitions: csv.Spec.CustomResourceDefinitions,
			Description:               csv.Spec.Description,
			DisplayName:               csv.Spec.DisplayName,
			InstallModes:              csv.Spec.InstallModes,
			Keywords:                  csv.Spec.Keywords,
			Links:                     csv.Spec.Links,
			Maintainers:               csv.Spec.Maintainers,
			Maturity:                  csv.Spec.Maturity,
			MinKubeVersion:            csv.Spec.MinKubeVersion,
			Provider:                  csv.Spec.Provider,
		}},
	)
	// opm lists the bundle image itself, unnamed, beside the CSV's related images.
	related := append([]RelatedImage{{Name: "", Image: opts.BundleImage}}, csv.Spec.RelatedImages...)
	return FBCBundle{
		Schema:        schemaBundle,
		Name:          csv.Metadata.Name,
		Package:       PackageName,
		Image:         opts.BundleImage,
		Properties:    properties,
		RelatedImages: related,
	}
}

// decodeCatalog splits a catalog into its blobs, each kept as JSON for a second, typed decode.
func decodeCatalog(data []byte) ([]json.RawMessage, error) {
	var blobs []json.RawMessage
	for i, doc := range splitDocuments(data) {
		blob, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		blobs = append(blobs, blob)
	}
	return blobs, nil
}
