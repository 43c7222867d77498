// Package v1alpha1 holds the ServiceMesh API types of group mesh.meshwright.dev. Types only: no logic that needs
// a client, and no defaults applied in Go (defaults are resolved by the controller into status).
// +kubebuilder:object:generate=true
// +groupName=mesh.meshwright.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of the ServiceMesh API.
	GroupVersion = schema.GroupVersion{Group: "mesh.meshwright.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the types with a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this group and version to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
