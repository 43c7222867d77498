package bundle

import (
	"context"
	"maps"
	"slices"
	"strings"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/install"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	"k8s.io/apimachinery/pkg/runtime"
)

var crdScheme = newCRDScheme()

func newCRDScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	install.Install(s)
	return s
}

func (c *checker) checkCRDs(b *loadedBundle) {
	for _, f := range b.crds {
		c.validateCRD(f)
		for _, v := range f.crd.Spec.Versions {
			if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
				c.add("crd-descriptions", f.file, "version %s has no schema", v.Name)
				continue
			}
			for _, path := range undescribed(v.Schema.OpenAPIV3Schema, "", true) {
				c.add("crd-descriptions", f.file, "version %s: %s has no description", v.Name, path)
			}
		}
	}
}

// validateCRD runs the API server's own CRD validation, leaving out errors under openAPIV3Schema and status as
// operator-framework/api does (the schema is checked by the API server at install time, status is not shipped).
func (c *checker) validateCRD(f crdFile) {
	crd := f.crd.DeepCopy()
	apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(crd)
	internal := &apiextensions.CustomResourceDefinition{}
	if err := crdScheme.Convert(crd, internal, nil); err != nil {
		c.add("crd-validation", f.file, "converting to the internal version: %v", err)
		return
	}
	for _, err := range validation.ValidateCustomResourceDefinition(context.Background(), internal) {
		if !strings.Contains(err.Field, "openAPIV3Schema") && !strings.Contains(err.Field, "status") {
			c.add("crd-validation", f.file, "%v", err)
		}
	}
}

// undescribed lists the schema's properties without a description. The top-level metadata is exempt: its schema
// is ObjectMeta's, fixed by the API server.
func undescribed(node *apiextensionsv1.JSONSchemaProps, path string, top bool) []string {
	var out []string
	if top && strings.TrimSpace(node.Description) == "" {
		out = append(out, "the top-level schema")
	}
	for _, name := range slices.Sorted(maps.Keys(node.Properties)) {
		child := node.Properties[name]
		childPath := path + "." + name
		if top && name == "metadata" {
			continue
		}
		if strings.TrimSpace(child.Description) == "" {
			out = append(out, childPath)
		}
		out = append(out, undescribed(&child, childPath, false)...)
	}
	if node.Items != nil && node.Items.Schema != nil {
		out = append(out, undescribed(node.Items.Schema, path+"[]", false)...)
	}
	if node.AdditionalProperties != nil && node.AdditionalProperties.Schema != nil {
		out = append(out, undescribed(node.AdditionalProperties.Schema, path+"{}", false)...)
	}
	return out
}
