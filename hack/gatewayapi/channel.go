package main

import (
	"fmt"
	"regexp"
	"strings"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// Gateway API's Go types carry channel information that kubebuilder markers cannot express as tags in their doc
// comments, which controller-tools copies into the schema descriptions. This file reads those tags for the standard
// channel: a field tagged <gateway:experimental> does not exist there, <gateway:standard:validation:...> adds a
// validation only there, and every tag is removed from the published description.
const (
	experimentalTag     = "<gateway:experimental>"
	ipAddressTag        = "<gateway:validateIPAddress>"
	validationTagPrefix = "<gateway:" + channel + ":validation:"
	experimentalOpen    = "<gateway:experimental:description>"
	experimentalClose   = "</gateway:experimental:description>"
	excludedOpen        = "<gateway:util:excludeFromCRD>"
	excludedClose       = "</gateway:util:excludeFromCRD>"
)

var (
	enumTag       = regexp.MustCompile(regexp.QuoteMeta(validationTagPrefix) + `Enum=([A-Za-z;]*)>`)
	celTag        = regexp.MustCompile(regexp.QuoteMeta(validationTagPrefix) + `XValidation:message="([^"]*)",rule="([^"]*)">`)
	patternTag    = regexp.MustCompile(regexp.QuoteMeta(validationTagPrefix) + "Pattern=`([^`]*)`")
	experimentalP = block(experimentalOpen, experimentalClose)
	excludedP     = block(excludedOpen, excludedClose)
	anyTag        = regexp.MustCompile(`<gateway:.*>`)
	blankRun      = regexp.MustCompile(`\n{4,}`)
)

// block matches a tagged paragraph together with the newlines around it.
func block(open, end string) *regexp.Regexp {
	return regexp.MustCompile(`\n*` + regexp.QuoteMeta(open) + `(?s:.*?)` + regexp.QuoteMeta(end) + `\n*`)
}

// forChannel rewrites the properties of one schema level for the standard channel, dropping experimental ones.
func forChannel(props map[string]apiextv1.JSONSchemaProps) (map[string]apiextv1.JSONSchemaProps, error) {
	for name, prop := range props {
		kept, ok, err := property(name, prop)
		if err != nil {
			return nil, err
		}
		if ok {
			props[name] = kept
		} else {
			delete(props, name)
		}
	}
	return props, nil
}

// property returns the standard-channel form of one property and false when the property is experimental.
func property(name string, prop apiextv1.JSONSchemaProps) (apiextv1.JSONSchemaProps, bool, error) {
	if strings.Contains(prop.Description, ipAddressTag) {
		if prop.Items == nil || prop.Items.Schema == nil {
			return prop, false, fmt.Errorf("%s: %s on a field that is not a list of objects", name, ipAddressTag)
		}
		prop.Items.Schema.OneOf = ipAddressOneOf()
	}
	if strings.Contains(prop.Description, experimentalTag) {
		return prop, false, nil
	}
	// controller-tools renders metav1.Time without a type; the API server wants one next to the format.
	if prop.Format == "date-time" {
		prop.Type = "string"
	}
	if err := addValidations(name, &prop); err != nil {
		return prop, false, err
	}
	desc, err := description(name, prop.Description)
	if err != nil {
		return prop, false, err
	}
	prop.Description = desc
	return nested(name, prop)
}

func nested(name string, prop apiextv1.JSONSchemaProps) (apiextv1.JSONSchemaProps, bool, error) {
	if len(prop.Properties) > 0 {
		props, err := forChannel(prop.Properties)
		if err != nil {
			return prop, false, err
		}
		prop.Properties = props
		return prop, true, nil
	}
	if prop.Items != nil && prop.Items.Schema != nil {
		item, ok, err := property(name, *prop.Items.Schema)
		if err != nil {
			return prop, false, err
		}
		if !ok {
			return prop, false, fmt.Errorf("%s: the items of a list cannot be experimental when the list is not", name)
		}
		prop.Items.Schema = &item
	}
	return prop, true, nil
}

// ipAddressOneOf requires an IP address value when an address's type is IPAddress; CRD markers cannot say "this
// field's format depends on that one".
func ipAddressOneOf() []apiextv1.JSONSchemaProps {
	ipAddress := []apiextv1.JSON{{Raw: []byte(`"IPAddress"`)}}
	return []apiextv1.JSONSchemaProps{
		{Properties: map[string]apiextv1.JSONSchemaProps{
			"type":  {Enum: ipAddress},
			"value": {AnyOf: []apiextv1.JSONSchemaProps{{Format: "ipv4"}, {Format: "ipv6"}}},
		}},
		{Properties: map[string]apiextv1.JSONSchemaProps{
			"type": {Not: &apiextv1.JSONSchemaProps{Enum: ipAddress}},
		}},
	}
}

// addValidations applies the validations tagged for the standard channel and fails on a tag it cannot read, so a
// new kind of tag upstream cannot be silently dropped.
func addValidations(name string, prop *apiextv1.JSONSchemaProps) error {
	tagged := strings.Count(prop.Description, validationTagPrefix)
	if tagged == 0 {
		return nil
	}
	applied := 0
	for _, m := range enumTag.FindAllStringSubmatch(prop.Description, -1) {
		prop.Enum = nil
		for _, value := range strings.Split(m[1], ";") {
			prop.Enum = append(prop.Enum, apiextv1.JSON{Raw: []byte(`"` + value + `"`)})
		}
		applied++
	}
	for _, m := range celTag.FindAllStringSubmatch(prop.Description, -1) {
		prop.XValidations = append(prop.XValidations, apiextv1.ValidationRule{Message: m[1], Rule: m[2]})
		applied++
	}
	if m := patternTag.FindAllStringSubmatch(prop.Description, -1); len(m) == 1 && prop.Pattern == "" {
		prop.Pattern = m[0][1]
		applied++
	}
	if applied < tagged {
		return fmt.Errorf("%s: %d %s tags, of which only %d could be read", name, tagged, validationTagPrefix, applied)
	}
	return nil
}

// description removes experimental paragraphs, paragraphs meant for Go readers only, and every remaining tag.
func description(name, desc string) (string, error) {
	if strings.Contains(desc, experimentalOpen) {
		if !experimentalP.MatchString(desc) {
			return "", fmt.Errorf("%s: %s without %s", name, experimentalOpen, experimentalClose)
		}
		desc = experimentalP.ReplaceAllString(desc, "\n\n")
	} else {
		desc = strings.ReplaceAll(desc, experimentalClose, "")
	}
	if strings.Contains(desc, excludedOpen) {
		if !excludedP.MatchString(desc) {
			return "", fmt.Errorf("%s: %s without %s", name, excludedOpen, excludedClose)
		}
		desc = excludedP.ReplaceAllString(desc, "\n\n\n")
	}
	desc = anyTag.ReplaceAllLiteralString(desc, "")
	desc = blankRun.ReplaceAllString(desc, "\n\n\n")
	return strings.Trim(desc, "\n"), nil
}
