package render

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/istio"
)

var updatePodTemplates = flag.Bool("update-pod-templates", false,
	"rewrite testdata/pod-templates: only for a deliberate pod template change, announced in the release notes")

// podTemplateSpecs are the specs whose istiod pod templates are pinned for every catalog version: the defaults and
// each typed field that reaches the pod template.
func podTemplateSpecs(t *testing.T) map[string]meshv1.ServiceMeshSpec {
	return map[string]meshv1.ServiceMeshSpec{
		"default":      {},
		"demo-profile": {Profile: "demo"},
		"cert-manager-ca": {Security: &meshv1.Security{CertificateAuthority: &meshv1.CertificateAuthority{
			Type: meshv1.CACertManager}}},
		"control-plane-settings": {
			ControlPlane: &meshv1.ControlPlane{Replicas: ptr.To[int32](2), LogLevel: "debug",
				NodeSelector: map[string]string{"kubernetes.io/os": "linux"},
				Tolerations:  []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "mesh", Effect: corev1.TaintEffectNoSchedule}},
				Resources: &corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("200m"), corev1.ResourceMemory: resource.MustParse("256Mi")}}},
			Values: raw(t, `{"pilot":{"env":{"PILOT_ENABLE_STATUS":"true"}}}`),
		},
	}
}

// TestPodTemplatesOfAnUnchangedSpecNeverChange pins the istiod pod template that each catalog version renders, for
// InPlace and for a revision, under testdata/pod-templates/<version>/. Istio's version and the user's spec decide
// the pod template, never Meshwright's own version: a Meshwright upgrade that changed it would restart every
// istiod of every mesh. These files are the render of the previous release; a change to them must be deliberate,
// documented in the release notes, and written with -update-pod-templates (plain -update leaves them alone).
func TestPodTemplatesOfAnUnchangedSpecNeverChange(t *testing.T) {
	for _, v := range istio.DefaultCatalog.Versions {
		for name, spec := range podTemplateSpecs(t) {
			for _, strategy := range []string{"inplace", "revision"} {
				file := filepath.Join("testdata", "pod-templates", v.Version, strategy+"-"+name+".yaml")
				t.Run("Istio "+v.Version+" "+strategy+" "+name+" renders the pinned pod template", func(t *testing.T) {
					cfg := Config{MeshName: "default", Namespace: "istio-system", Hub: istio.DefaultCatalog.Hub, Version: v,
						KubeVersion: "v1.37.0", Spec: spec}
					if strategy == "revision" {
						rev := "default-" + v.RevisionSuffix()
						cfg.Revisions = []Revision{{Name: rev, Version: v, Tags: []string{"default"}}}
						cfg.DefaultRevision = rev
					}
					got, err := istiodPodTemplate(cfg)
					if err != nil {
						t.Fatal(err)
					}
					if *updatePodTemplates {
						if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
							t.Fatal(err)
						}
						if err := os.WriteFile(file, got, 0o644); err != nil {
							t.Fatal(err)
						}
					}
					want, err := os.ReadFile(file)
					if err != nil {
						t.Fatalf("%v: every catalog version needs its pinned pod templates; write them once with "+
							"`go test ./internal/render -run TestPodTemplates -update-pod-templates`", err)
					}
					if !bytes.Equal(got, want) {
						t.Errorf("the istiod pod template of Istio %s differs from %s: upgrading Meshwright would restart "+
							"istiod in every mesh that runs this version. If that is deliberate, say so in the release notes "+
							"and run `go test ./internal/render -run TestPodTemplates -update-pod-templates`", v.Version, file)
					}
				})
			}
		}
	}
}

// istiodPodTemplate renders cfg and returns the istiod Deployment's pod template as YAML.
func istiodPodTemplate(cfg Config) ([]byte, error) {
	objs, err := Render(cfg)
	if err != nil {
		return nil, err
	}
	var found []byte
	for _, o := range objs {
		if o.GetKind() != "Deployment" || o.GetLabels()[LabelComponent] != ComponentIstiod {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("more than one istiod Deployment rendered")
		}
		template, ok, err := unstructured.NestedMap(o.Object, "spec", "template")
		if err != nil || !ok {
			return nil, fmt.Errorf("Deployment %s has no pod template (%v)", o.GetName(), err)
		}
		if found, err = yaml.Marshal(template); err != nil {
			return nil, err
		}
	}
	if found == nil {
		return nil, fmt.Errorf("no istiod Deployment rendered")
	}
	return found, nil
}
