package gatewayapi

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Foreign tells whether a live Gateway API CRD belongs to someone else, and why in words for the ServiceMesh's
// status. Such a CRD is never updated: unlike Istio's CRDs, which istiod cannot run without, Gateway API CRDs are
// shared by every gateway implementation in the cluster, and their installer (another controller, a platform team,
// the experimental channel) decides their version. A CRD is someone else's when it lacks Meshwright's owner label,
// or when it is from the experimental channel whoever installed it, since the standard channel would remove fields.
func Foreign(live *unstructured.Unstructured) (bool, string) {
	name := live.GetName()
	annotations := live.GetAnnotations()
	if _, ours := live.GetLabels()[LabelOwner]; !ours {
		return true, fmt.Sprintf("CustomResourceDefinition %s was installed by someone else (%s); Meshwright leaves it as it is",
			name, describe(annotations))
	}
	if annotations[ChannelAnnotation] == ChannelExperimental {
		return true, fmt.Sprintf("CustomResourceDefinition %s is from the Gateway API experimental channel (%s); "+
			"Meshwright installs only the standard channel and does not replace it", name, describe(annotations))
	}
	return false, ""
}

func describe(annotations map[string]string) string {
	version := annotations[BundleVersionAnnotation]
	channel := annotations[ChannelAnnotation]
	switch {
	case version == "" && channel == "":
		return "no Gateway API bundle annotations"
	case channel == "":
		return "bundle " + version
	case version == "":
		return channel + " channel"
	default:
		return fmt.Sprintf("bundle %s, %s channel", version, channel)
	}
}
