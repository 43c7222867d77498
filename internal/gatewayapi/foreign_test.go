package gatewayapi

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func liveCRD(labels, annotations map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("apiextensions.k8s.io/v1")
	u.SetKind("CustomResourceDefinition")
	u.SetName("httproutes.gateway.networking.k8s.io")
	u.SetLabels(labels)
	u.SetAnnotations(annotations)
	return u
}

func TestForeign(t *testing.T) {
	ours := map[string]string{LabelOwner: "default"}
	standard := map[string]string{BundleVersionAnnotation: "v1.6.3", ChannelAnnotation: Channel}
	experimental := map[string]string{BundleVersionAnnotation: "v1.5.0", ChannelAnnotation: ChannelExperimental}
	for _, tc := range []struct {
		name         string
		live         *unstructured.Unstructured
		foreign      bool
		reasonQuotes []string
	}{
		{"a standard CRD Meshwright labelled is its own", liveCRD(ours, standard), false, nil},
		{"a standard CRD of an older bundle that Meshwright labelled is its own to upgrade",
			liveCRD(ours, map[string]string{BundleVersionAnnotation: "v1.4.1", ChannelAnnotation: Channel}), false, nil},
		{"a standard CRD without the owner label is someone else's", liveCRD(nil, standard), true,
			[]string{"httproutes.gateway.networking.k8s.io", "someone else", "bundle v1.6.3, standard channel"}},
		{"a CRD without any annotation and without the owner label is someone else's", liveCRD(nil, nil), true,
			[]string{"someone else", "no Gateway API bundle annotations"}},
		{"an experimental CRD without the owner label is someone else's", liveCRD(nil, experimental), true,
			[]string{"someone else", "bundle v1.5.0, experimental channel"}},
		{"an experimental CRD is someone else's even with the owner label", liveCRD(ours, experimental), true,
			[]string{"experimental channel", "does not replace it"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			foreign, reason := Foreign(tc.live)
			if foreign != tc.foreign {
				t.Fatalf("Foreign = %v (%q), want %v", foreign, reason, tc.foreign)
			}
			if !foreign && reason != "" {
				t.Errorf("a CRD that is Meshwright's has a reason: %q", reason)
			}
			for _, quote := range tc.reasonQuotes {
				if !strings.Contains(reason, quote) {
					t.Errorf("reason %q does not say %q", reason, quote)
				}
			}
		})
	}
}
