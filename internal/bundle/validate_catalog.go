package bundle

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// ValidateCatalog checks a file-based catalog the way opm would load it: a stream of blobs with exactly one
// olm.package of our package, channels of that package whose entries name bundles in the catalog (replaces may
// point outside it, to a bundle an older catalog held), a default channel that exists, and bundles with an image
// and an olm.package property that agrees with their package.
func ValidateCatalog(path string) []Problem {
	c := &checker{}
	file := filepath.Base(path)
	data, err := os.ReadFile(path)
	if err != nil {
		c.add("fbc-parse", file, "unreadable: %v", err)
		return c.problems
	}
	blobs, err := decodeCatalog(data)
	if err != nil {
		c.add("fbc-parse", file, "not a YAML stream: %v", err)
		return c.problems
	}
	var packages []FBCPackage
	var channels []FBCChannel
	bundles := map[string]FBCBundle{}
	for _, blob := range blobs {
		var meta struct {
			Schema string `json:"schema"`
		}
		if err := json.Unmarshal(blob, &meta); err != nil {
			c.add("fbc-parse", file, "a document is not an object: %v", err)
			continue
		}
		switch meta.Schema {
		case schemaPackage:
			var p FBCPackage
			c.decodeBlob(file, blob, &p)
			packages = append(packages, p)
		case schemaChannel:
			var ch FBCChannel
			c.decodeBlob(file, blob, &ch)
			channels = append(channels, ch)
		case schemaBundle:
			var b fbcBundleIn
			c.decodeBlob(file, blob, &b)
			bundles[b.Name] = b.FBCBundle
			c.checkFBCBundle(file, b)
		default:
			c.add("fbc-parse", file, "unknown schema %q", meta.Schema)
		}
	}
	c.checkFBCPackage(file, packages, channels)
	c.checkFBCChannels(file, channels, bundles)
	return c.problems
}

// fbcBundleIn reads properties back as raw JSON.
type fbcBundleIn struct {
	FBCBundle
	Properties []struct {
		Type  string          `json:"type"`
		Value json.RawMessage `json:"value"`
	} `json:"properties"`
}

func (c *checker) decodeBlob(file string, blob json.RawMessage, into any) {
	if err := json.Unmarshal(blob, into); err != nil {
		c.add("fbc-parse", file, "%v", err)
	}
}

func (c *checker) checkFBCPackage(file string, packages []FBCPackage, channels []FBCChannel) {
	if len(packages) != 1 {
		c.add("fbc-package", file, "%d olm.package blobs, want exactly one", len(packages))
		return
	}
	p := packages[0]
	if p.Name != PackageName {
		c.add("fbc-package", file, "package %q, want %q", p.Name, PackageName)
	}
	for _, ch := range channels {
		if ch.Name == p.DefaultChannel {
			return
		}
	}
	c.add("fbc-package", file, "default channel %q has no olm.channel", p.DefaultChannel)
}

func (c *checker) checkFBCChannels(file string, channels []FBCChannel, bundles map[string]FBCBundle) {
	for _, ch := range channels {
		if ch.Package != PackageName {
			c.add("fbc-channel", file, "channel %q belongs to package %q, want %q", ch.Name, ch.Package, PackageName)
		}
		if len(ch.Entries) == 0 {
			c.add("fbc-channel", file, "channel %q has no entries", ch.Name)
		}
		for _, e := range ch.Entries {
			if _, ok := bundles[e.Name]; !ok {
				c.add("fbc-channel", file, "channel %q lists %q, which is not a bundle of the catalog", ch.Name, e.Name)
			}
		}
	}
}

func (c *checker) checkFBCBundle(file string, b fbcBundleIn) {
	if b.Image == "" {
		c.add("fbc-bundle", file, "bundle %q has no image", b.Name)
	}
	if b.Package != PackageName {
		c.add("fbc-bundle", file, "bundle %q belongs to package %q, want %q", b.Name, b.Package, PackageName)
	}
	for _, p := range b.Properties {
		if p.Type != propertyPackage {
			continue
		}
		var pkg packageProperty
		if err := json.Unmarshal(p.Value, &pkg); err != nil || pkg.PackageName != b.Package || CSVName(pkg.Version) != b.Name {
			c.add("fbc-bundle", file, "bundle %q: olm.package property %s does not match its package and name", b.Name, p.Value)
		}
		return
	}
	c.add("fbc-bundle", file, "bundle %q has no olm.package property", b.Name)
}
