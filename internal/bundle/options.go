package bundle

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// OptionsFromBundle reads back the options a checked-in bundle and catalog were generated with, so a test can
// regenerate them from the current config/ and compare.
func OptionsFromBundle(root string) (Options, error) {
	var opts Options
	csv := &CSV{}
	if err := readYAML(filepath.Join(root, csvFile), csv); err != nil {
		return opts, err
	}
	opts.Version = csv.Spec.Version
	opts.Image = csv.Metadata.Annotations["containerImage"]
	opts.Replaces = csv.Spec.Replaces

	var metadata struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := readYAML(filepath.Join(root, annotationsYML), &metadata); err != nil {
		return opts, err
	}
	opts.Channels = strings.Split(metadata.Annotations[annotationChannels], ",")
	opts.DefaultChannel = metadata.Annotations[annotationDefaultChannel]

	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(CatalogFile)))
	if err != nil {
		return opts, fmt.Errorf("reading the catalog: %w", err)
	}
	blobs, err := decodeCatalog(data)
	if err != nil {
		return opts, fmt.Errorf("reading the catalog: %w", err)
	}
	for _, blob := range blobs {
		var b FBCBundle
		if json.Unmarshal(blob, &b) == nil && b.Schema == schemaBundle && b.Name == CSVName(opts.Version) {
			opts.BundleImage = b.Image
		}
	}
	return opts, nil
}

func readYAML(path string, into any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		return fmt.Errorf("decoding %s: %w", path, err)
	}
	return nil
}
