package main

import (
	"fmt"
	"strings"

	"golang.org/x/tools/go/packages"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-tools/pkg/crd"
	"sigs.k8s.io/controller-tools/pkg/loader"
	"sigs.k8s.io/controller-tools/pkg/markers"
	"sigs.k8s.io/gateway-api/pkg/consts"
	"sigs.k8s.io/yaml"
)

const (
	group   = "gateway.networking.k8s.io"
	channel = "standard"
)

// apiPackages are the Go packages that declare the versions of group. The schema package is loaded too because
// the generated register functions refer to it and the parser resolves groups through them.
var apiPackages = []string{
	"k8s.io/apimachinery/pkg/runtime/schema",
	"sigs.k8s.io/gateway-api/apis/v1",
	"sigs.k8s.io/gateway-api/apis/v1beta1",
	"sigs.k8s.io/gateway-api/apis/v1alpha2",
	"sigs.k8s.io/gateway-api/apis/v1alpha3",
}

// generate returns the standard-channel CRDs of group, keyed by file name.
func generate() (map[string][]byte, error) {
	parser, kinds, err := parse()
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, gk := range kinds {
		if gk.Group != group {
			continue
		}
		parser.NeedCRDFor(gk, nil)
		def, ok := parser.CustomResourceDefinitions[gk]
		if !ok {
			return nil, fmt.Errorf("no CRD generated for %s", gk)
		}
		if !inStandardChannel(def) {
			continue
		}
		name, body, err := render(def)
		if err != nil {
			return nil, fmt.Errorf("rendering the %s CRD: %w", gk, err)
		}
		files[name] = body
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no standard-channel kind of %s in %v", group, apiPackages)
	}
	return files, nil
}

// parse loads the API packages with controller-tools' CRD markers registered, as controller-gen's crd generator
// does, and returns the parser with the kinds it found.
func parse() (*crd.Parser, []schema.GroupKind, error) {
	roots, err := loader.LoadRoots(apiPackages...)
	if err != nil {
		return nil, nil, fmt.Errorf("loading %v: %w", apiPackages, err)
	}
	gen := &crd.Generator{}
	parser := &crd.Parser{
		Collector: &markers.Collector{Registry: &markers.Registry{}},
		Checker:   &loader.TypeChecker{NodeFilters: []loader.NodeFilter{gen.CheckFilter()}},
	}
	if err := gen.RegisterMarkers(parser.Collector.Registry); err != nil {
		return nil, nil, fmt.Errorf("registering the CRD markers: %w", err)
	}
	crd.AddKnownTypes(parser)
	for _, root := range roots {
		parser.NeedPackage(root)
	}
	metav1Pkg := crd.FindMetav1(roots)
	if metav1Pkg == nil {
		return nil, nil, fmt.Errorf("none of %v imports metav1", apiPackages)
	}
	kinds := crd.FindKubeKinds(parser, metav1Pkg)
	// Marker and type errors are recorded on the packages rather than returned.
	if loader.PrintErrors(roots, packages.TypeError) {
		return nil, nil, fmt.Errorf("the API packages have errors (printed above)")
	}
	return parser, kinds, nil
}

// inStandardChannel tells whether a kind has graduated: Gateway API ships a kind in its standard channel once it has
// a beta or GA version; kinds that only have alpha versions are experimental.
func inStandardChannel(def apiextv1.CustomResourceDefinition) bool {
	for _, v := range def.Spec.Versions {
		if !isAlpha(v.Name) {
			return true
		}
	}
	return false
}

func isAlpha(version string) bool {
	return strings.Contains(version, "alpha")
}

// render turns the parser's CRD into the standard channel's: alpha versions stay in the CRD (so stored objects of an
// earlier experimental install remain readable by name) but are not served, experimental fields are cut from every
// schema, and the annotations say which bundle and channel the CRD is.
func render(def apiextv1.CustomResourceDefinition) (string, []byte, error) {
	out := def.DeepCopy()
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	out.Annotations[consts.BundleVersionAnnotation] = consts.BundleVersion
	out.Annotations[consts.ChannelAnnotation] = channel
	out.Annotations[apiextv1.KubeAPIApprovedAnnotation] = consts.ApprovalLink
	crd.FixTopLevelMetadata(*out)
	for i := range out.Spec.Versions {
		v := &out.Spec.Versions[i]
		if isAlpha(v.Name) {
			v.Served = false
		}
		if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
			return "", nil, fmt.Errorf("version %s has no schema", v.Name)
		}
		props, err := forChannel(v.Schema.OpenAPIV3Schema.Properties)
		if err != nil {
			return "", nil, fmt.Errorf("version %s: %w", v.Name, err)
		}
		v.Schema.OpenAPIV3Schema.Properties = props
	}
	converted, err := crd.AsVersion(*out, apiextv1.SchemeGroupVersion)
	if err != nil {
		return "", nil, fmt.Errorf("converting to %s: %w", apiextv1.SchemeGroupVersion, err)
	}
	v1, ok := converted.(*apiextv1.CustomResourceDefinition)
	if !ok {
		return "", nil, fmt.Errorf("conversion returned %T", converted)
	}
	body, err := marshal(v1)
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("%s_%s.yaml", v1.Spec.Group, v1.Spec.Names.Plural), body, nil
}

// marshal writes the CRD as it is applied: without status and without the metadata the API server fills in. It goes
// through a map rather than a struct embedding TypeMeta and ObjectMeta, because controller-gen's `crd paths=./...`
// would take such a struct in this repository for an API kind of ours.
func marshal(def *apiextv1.CustomResourceDefinition) ([]byte, error) {
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(def)
	if err != nil {
		return nil, fmt.Errorf("converting to a map: %w", err)
	}
	delete(obj, "status")
	unstructured.RemoveNestedField(obj, "metadata", "creationTimestamp")
	body, err := yaml.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("marshalling: %w", err)
	}
	return body, nil
}
