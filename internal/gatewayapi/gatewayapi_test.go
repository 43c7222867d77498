package gatewayapi

import (
	"slices"
	"strings"
	"testing"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/gateway-api/pkg/consts"
)

func typed(t *testing.T, crd map[string]any) *apiextv1.CustomResourceDefinition {
	t.Helper()
	out := &apiextv1.CustomResourceDefinition{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(crd, out, true); err != nil {
		t.Fatalf("the CRD does not decode into apiextensions/v1 without unknown fields: %v", err)
	}
	return out
}

func TestEmbeddedCRDs(t *testing.T) {
	crds, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	if len(crds) == 0 {
		t.Fatal("no CRD is embedded")
	}
	for _, u := range crds {
		crd := typed(t, u.Object)
		t.Run(crd.Name+" is a well-formed standard-channel Gateway API CRD of the module's bundle", func(t *testing.T) {
			if crd.Spec.Group != Group {
				t.Errorf("group %q, want %q", crd.Spec.Group, Group)
			}
			if want := crd.Spec.Names.Plural + "." + crd.Spec.Group; crd.Name != want {
				t.Errorf("name %q, want %q", crd.Name, want)
			}
			if got := crd.Annotations[ChannelAnnotation]; got != Channel {
				t.Errorf("%s is %q, want %q", ChannelAnnotation, got, Channel)
			}
			if got := crd.Annotations[BundleVersionAnnotation]; got != consts.BundleVersion {
				t.Errorf("%s is %q, but go.mod's sigs.k8s.io/gateway-api is %s: run `make gatewayapi-crds`",
					BundleVersionAnnotation, got, consts.BundleVersion)
			}
			var storage, served []string
			for _, v := range crd.Spec.Versions {
				if v.Storage {
					storage = append(storage, v.Name)
				}
				if v.Served {
					served = append(served, v.Name)
				}
				if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
					t.Errorf("version %s has no schema", v.Name)
				}
			}
			if len(storage) != 1 {
				t.Errorf("storage versions %v, want exactly one", storage)
			}
			if len(served) == 0 {
				t.Error("no version is served")
			}
			for _, v := range served {
				if strings.Contains(v, "alpha") {
					t.Errorf("alpha version %s is served in the standard channel", v)
				}
			}
		})
	}
}

func TestCRDsAreSortedAndNamedByNames(t *testing.T) {
	crds, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range crds {
		got = append(got, c.GetName())
	}
	if !slices.IsSorted(got) {
		t.Errorf("CRDs() is not sorted by name: %v", got)
	}
	if names := Names(); !slices.Equal(got, names) {
		t.Errorf("Names() = %v, want the CRDs' names %v", names, got)
	}
}

func TestCRDsReturnsCopies(t *testing.T) {
	first, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	first[0].SetLabels(map[string]string{LabelOwner: "changed"})
	second, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := second[0].GetLabels()[LabelOwner]; ok {
		t.Error("a caller's change to one CRDs() result shows in the next")
	}
}

func TestBundleVersionIsTheModules(t *testing.T) {
	got, err := BundleVersion()
	if err != nil {
		t.Fatal(err)
	}
	if got != consts.BundleVersion {
		t.Errorf("BundleVersion() = %s, want the module's %s", got, consts.BundleVersion)
	}
}
