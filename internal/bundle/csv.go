package bundle

import (
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

// The ClusterServiceVersion (operators.coreos.com/v1alpha1) as far as Meshwright writes and checks it. OLM's own Go
// types (github.com/operator-framework/api) are not installable here, so these structs carry the same JSON field
// names for the fields we use and nothing else.

const (
	csvAPIVersion = "operators.coreos.com/v1alpha1"
	csvKind       = "ClusterServiceVersion"
)

// CSV is a ClusterServiceVersion.
type CSV struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Metadata   CSVMetadata `json:"metadata"`
	Spec       CSVSpec     `json:"spec"`
}

// CSVMetadata is the part of ObjectMeta a CSV in a bundle carries.
type CSVMetadata struct {
	Name        string            `json:"name"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
}

// CSVSpec is the CSV's spec.
type CSVSpec struct {
	DisplayName               string                    `json:"displayName"`
	Description               string                    `json:"description,omitempty"`
	Version                   string                    `json:"version,omitempty"`
	Replaces                  string                    `json:"replaces,omitempty"`
	Maturity                  string                    `json:"maturity,omitempty"`
	MinKubeVersion            string                    `json:"minKubeVersion,omitempty"`
	Keywords                  []string                  `json:"keywords,omitempty"`
	Maintainers               []Maintainer              `json:"maintainers,omitempty"`
	Provider                  AppLink                   `json:"provider,omitempty"`
	Links                     []AppLink                 `json:"links,omitempty"`
	Icon                      []Icon                    `json:"icon,omitempty"`
	InstallModes              []InstallMode             `json:"installModes,omitempty"`
	Install                   NamedInstallStrategy      `json:"install"`
	CustomResourceDefinitions CustomResourceDefinitions `json:"customresourcedefinitions,omitempty"`
	RelatedImages             []RelatedImage            `json:"relatedImages,omitempty"`
}

// Maintainer is a person or team to contact.
type Maintainer struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// AppLink is a named URL (links and provider).
type AppLink struct {
	Name string `json:"name,omitempty"`
	URL  string `json:"url,omitempty"`
}

// Icon is base64 image data with its media type.
type Icon struct {
	Data      string `json:"base64data"`
	MediaType string `json:"mediatype"`
}

// InstallMode says whether the operator supports one OperatorGroup shape.
type InstallMode struct {
	Type      string `json:"type"`
	Supported bool   `json:"supported"`
}

// NamedInstallStrategy is spec.install.
type NamedInstallStrategy struct {
	Strategy string                    `json:"strategy"`
	Spec     StrategyDetailsDeployment `json:"spec,omitempty"`
}

// StrategyDetailsDeployment is spec.install.spec for the "deployment" strategy.
type StrategyDetailsDeployment struct {
	Deployments        []StrategyDeploymentSpec `json:"deployments"`
	Permissions        []StrategyPermissions    `json:"permissions,omitempty"`
	ClusterPermissions []StrategyPermissions    `json:"clusterPermissions,omitempty"`
}

// StrategyDeploymentSpec is one Deployment OLM creates.
type StrategyDeploymentSpec struct {
	Name  string                `json:"name"`
	Label map[string]string     `json:"label,omitempty"`
	Spec  appsv1.DeploymentSpec `json:"spec"`
}

// StrategyPermissions are the rules OLM grants a service account (namespaced or cluster-wide).
type StrategyPermissions struct {
	ServiceAccountName string              `json:"serviceAccountName"`
	Rules              []rbacv1.PolicyRule `json:"rules"`
}

// CustomResourceDefinitions lists the CRDs the operator owns.
type CustomResourceDefinitions struct {
	Owned []CRDDescription `json:"owned,omitempty"`
}

// CRDDescription describes one version of an owned CRD for OLM and consoles.
type CRDDescription struct {
	Name              string                 `json:"name"`
	Version           string                 `json:"version"`
	Kind              string                 `json:"kind"`
	DisplayName       string                 `json:"displayName,omitempty"`
	Description       string                 `json:"description,omitempty"`
	Resources         []APIResourceReference `json:"resources,omitempty"`
	SpecDescriptors   []Descriptor           `json:"specDescriptors,omitempty"`
	StatusDescriptors []Descriptor           `json:"statusDescriptors,omitempty"`
}

// APIResourceReference names a kind the operator creates for a custom resource.
type APIResourceReference struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Version string `json:"version"`
}

// Descriptor tells a console how to show one field of a custom resource.
type Descriptor struct {
	Path         string   `json:"path"`
	DisplayName  string   `json:"displayName,omitempty"`
	Description  string   `json:"description,omitempty"`
	XDescriptors []string `json:"x-descriptors,omitempty"`
}

// RelatedImage is an image the operator may deploy, listed for mirroring in disconnected clusters.
type RelatedImage struct {
	Name  string `json:"name"`
	Image string `json:"image"`
}
