package main

import (
	"strings"
	"testing"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// The equivalence test in internal/gatewayapi covers the tags the module uses today; these cases pin the behaviour
// a newer module could rely on, and the errors that stop a tag from being silently ignored.
func TestProperty(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in       apiextv1.JSONSchemaProps
		kept     bool
		desc     string
		enum     int
		rules    int
		errQuote string
	}{
		{name: "an experimental field is left out",
			in: apiextv1.JSONSchemaProps{Description: "Foo.\n<gateway:experimental>"}},
		{name: "an experimental paragraph is cut from a standard field's description", kept: true,
			in:   apiextv1.JSONSchemaProps{Description: "Foo.\n\n<gateway:experimental:description>\nBar.\n</gateway:experimental:description>\n\nBaz."},
			desc: "Foo.\n\nBaz."},
		{name: "a paragraph for Go readers only is cut", kept: true,
			in:   apiextv1.JSONSchemaProps{Description: "Foo.\n<gateway:util:excludeFromCRD>\nNotes.\n</gateway:util:excludeFromCRD>\nBaz."},
			desc: "Foo.\n\n\nBaz."},
		{name: "a standard-channel validation is added and its tag removed", kept: true,
			in:    apiextv1.JSONSchemaProps{Description: "Foo.\n<gateway:standard:validation:XValidation:message=\"m\",rule=\"r\">\n<gateway:standard:validation:Enum=A;B>"},
			desc:  "Foo.",
			enum:  2,
			rules: 1},
		{name: "an experimental-channel validation is dropped with its tag", kept: true,
			in:   apiextv1.JSONSchemaProps{Description: "Foo.\n<gateway:experimental:validation:Enum=A;B>"},
			desc: "Foo."},
		{name: "a standard-channel validation tag that cannot be read is an error",
			in:       apiextv1.JSONSchemaProps{Description: "<gateway:standard:validation:MaxItems=3>"},
			errQuote: "only 0 could be read"},
		{name: "an experimental paragraph that is never closed is an error",
			in:       apiextv1.JSONSchemaProps{Description: "Foo.\n<gateway:experimental:description>\nBar."},
			errQuote: "without </gateway:experimental:description>"},
		{name: "an experimental field inside a standard object is left out", kept: true,
			in: apiextv1.JSONSchemaProps{Description: "Foo.", Properties: map[string]apiextv1.JSONSchemaProps{
				"a": {Description: "A."},
				"b": {Description: "<gateway:experimental>"},
			}},
			desc: "Foo."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, kept, err := property("field", tc.in)
			if tc.errQuote != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errQuote) {
					t.Fatalf("error %v, want one saying %q", err, tc.errQuote)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if kept != tc.kept {
				t.Fatalf("kept = %v, want %v", kept, tc.kept)
			}
			if !kept {
				return
			}
			if out.Description != tc.desc {
				t.Errorf("description %q, want %q", out.Description, tc.desc)
			}
			if len(out.Enum) != tc.enum || len(out.XValidations) != tc.rules {
				t.Errorf("%d enum values and %d rules, want %d and %d", len(out.Enum), len(out.XValidations), tc.enum, tc.rules)
			}
			if _, ok := out.Properties["b"]; ok {
				t.Error("the experimental nested field is still there")
			}
		})
	}
}
