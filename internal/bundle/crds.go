package bundle

import (
	"fmt"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// descriptorSpec picks a field for consoles; its description comes from the CRD schema, so the API's Go doc
// comments stay the only text to maintain.
type descriptorSpec struct {
	path        string
	displayName string
	// xDescriptor is the console widget; "select" expands into one per enum value of the schema.
	xDescriptor string
}

const selectDescriptor = "select"

// crdListing is how the CSV presents an owned CRD: its display name, the fields worth a widget, and the kinds the
// operator creates for each custom resource.
type crdListing struct {
	displayName string
	spec        []descriptorSpec
	status      []descriptorSpec
	resources   []APIResourceReference
}

var crdListings = map[string]crdListing{
	"servicemeshes.mesh.meshwright.dev": {
		displayName: "Service Mesh",
		spec: []descriptorSpec{
			{"version", "Istio version", "urn:alm:descriptor:com.tectonic.ui:text"},
			{"profile", "Profile", selectDescriptor},
			{"namespace", "Control plane namespace", "urn:alm:descriptor:io.kubernetes:Namespace"},
			{"updateStrategy.type", "Update strategy", selectDescriptor},
			{"security.mtls", "Mesh-wide mTLS", selectDescriptor},
		},
		status: []descriptorSpec{
			{"conditions", "Conditions", "urn:alm:descriptor:io.kubernetes.conditions"},
			{"version", "Istio version", "urn:alm:descriptor:text"},
			{"activeRevision", "Active revision", "urn:alm:descriptor:text"},
		},
		resources: []APIResourceReference{
			{Name: "deployments", Kind: "Deployment", Version: "v1"},
			{Name: "services", Kind: "Service", Version: "v1"},
			{Name: "configmaps", Kind: "ConfigMap", Version: "v1"},
			{Name: "secrets", Kind: "Secret", Version: "v1"},
			{Name: "serviceaccounts", Kind: "ServiceAccount", Version: "v1"},
			{Name: "horizontalpodautoscalers", Kind: "HorizontalPodAutoscaler", Version: "v2"},
			{Name: "poddisruptionbudgets", Kind: "PodDisruptionBudget", Version: "v1"},
			{Name: "mutatingwebhookconfigurations", Kind: "MutatingWebhookConfiguration", Version: "v1"},
			{Name: "validatingwebhookconfigurations", Kind: "ValidatingWebhookConfiguration", Version: "v1"},
			{Name: "customresourcedefinitions", Kind: "CustomResourceDefinition", Version: "v1"},
		},
	},
}

// ownedCRDs describes every served version of every rendered CRD.
func ownedCRDs(crds []*apiextensionsv1.CustomResourceDefinition) ([]CRDDescription, error) {
	var owned []CRDDescription
	for _, crd := range crds {
		listing, ok := crdListings[crd.Name]
		if !ok {
			return nil, fmt.Errorf("CRD %s has no listing (display name, descriptors) in internal/bundle/crds.go", crd.Name)
		}
		for _, version := range crd.Spec.Versions {
			if !version.Served {
				continue
			}
			desc, err := describeVersion(crd, version, listing)
			if err != nil {
				return nil, err
			}
			owned = append(owned, desc)
		}
	}
	return owned, nil
}

func describeVersion(crd *apiextensionsv1.CustomResourceDefinition, version apiextensionsv1.CustomResourceDefinitionVersion,
	listing crdListing) (CRDDescription, error) {
	if version.Schema == nil || version.Schema.OpenAPIV3Schema == nil {
		return CRDDescription{}, fmt.Errorf("CRD %s version %s has no schema", crd.Name, version.Name)
	}
	root := version.Schema.OpenAPIV3Schema
	desc := CRDDescription{
		Name:        crd.Name,
		Version:     version.Name,
		Kind:        crd.Spec.Names.Kind,
		DisplayName: listing.displayName,
		Description: firstParagraph(root.Description),
		Resources:   listing.resources,
	}
	var err error
	if desc.SpecDescriptors, err = descriptors(root, "spec", listing.spec); err != nil {
		return CRDDescription{}, fmt.Errorf("CRD %s: %w", crd.Name, err)
	}
	if desc.StatusDescriptors, err = descriptors(root, "status", listing.status); err != nil {
		return CRDDescription{}, fmt.Errorf("CRD %s: %w", crd.Name, err)
	}
	return desc, nil
}

func descriptors(root *apiextensionsv1.JSONSchemaProps, section string, specs []descriptorSpec) ([]Descriptor, error) {
	var out []Descriptor
	for _, s := range specs {
		field, err := schemaAt(root, section+"."+s.path)
		if err != nil {
			return nil, err
		}
		d := Descriptor{Path: s.path, DisplayName: s.displayName, Description: firstParagraph(field.Description)}
		if s.xDescriptor == selectDescriptor {
			if len(field.Enum) == 0 {
				return nil, fmt.Errorf("%s.%s is shown as a selection but its schema has no enum", section, s.path)
			}
			for _, value := range field.Enum {
				d.XDescriptors = append(d.XDescriptors, "urn:alm:descriptor:com.tectonic.ui:select:"+strings.Trim(string(value.Raw), `"`))
			}
		} else {
			d.XDescriptors = []string{s.xDescriptor}
		}
		out = append(out, d)
	}
	return out, nil
}

// schemaAt follows a dotted path of object properties.
func schemaAt(root *apiextensionsv1.JSONSchemaProps, path string) (*apiextensionsv1.JSONSchemaProps, error) {
	node := root
	for _, name := range strings.Split(path, ".") {
		next, ok := node.Properties[name]
		if !ok {
			return nil, fmt.Errorf("schema has no field %s", path)
		}
		node = &next
	}
	return node, nil
}

// firstParagraph keeps a schema description short enough for a console tooltip.
func firstParagraph(text string) string {
	paragraph, _, _ := strings.Cut(strings.TrimSpace(text), "\n\n")
	return strings.Join(strings.Fields(paragraph), " ")
}
