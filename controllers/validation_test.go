package controllers

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
)

// meshFromJSON builds an unstructured ServiceMesh with the given spec JSON, so that tests can send values the Go
// types could not express (wrong types, negative numbers, unknown enums) to the real API server.
func meshFromJSON(t *testing.T, name, specJSON string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON([]byte(`{"apiVersion":"mesh.meshwright.dev/v1alpha1","kind":"ServiceMesh","metadata":{"name":"` +
		name + `"},"spec":` + specJSON + `}`)); err != nil {
		t.Fatalf("bad test fixture: %v", err)
	}
	return u
}

func TestCRDValidationRejectsInvalidSpecsNamingTheField(t *testing.T) {
	cases := []struct {
		name      string
		meshName  string
		spec      string
		wantField string
	}{
		{"a version with a v prefix", "", `{"version":"v1.31"}`, "spec.version"},
		{"a version that is a word", "", `{"version":"newest"}`, "spec.version"},
		{"a namespace with capitals", "", `{"namespace":"Istio-System"}`, "spec.namespace"},
		{"a namespace longer than a DNS label", "", `{"namespace":"` + strings.Repeat("n", 64) + `"}`, "spec.namespace"},
		{"an unknown profile", "", `{"profile":"huge"}`, "spec.profile"},
		{"an unknown update strategy", "", `{"updateStrategy":{"type":"BlueGreen"}}`, "spec.updateStrategy.type"},
		{"a negative grace period", "", `{"updateStrategy":{"inactiveRevisionDeletionGracePeriodSeconds":-1}}`,
			"spec.updateStrategy.inactiveRevisionDeletionGracePeriodSeconds"},
		{"zero istiod replicas", "", `{"controlPlane":{"replicas":0}}`, "spec.controlPlane.replicas"},
		{"replicas together with autoscaling", "", `{"controlPlane":{"replicas":2,"autoscaling":{"minReplicas":1,"maxReplicas":3}}}`,
			"spec.controlPlane.replicas and spec.controlPlane.autoscaling"},
		{"autoscaling with min above max", "", `{"controlPlane":{"autoscaling":{"minReplicas":5,"maxReplicas":3}}}`,
			"spec.controlPlane.autoscaling.minReplicas"},
		{"an unknown log level", "", `{"controlPlane":{"logLevel":"verbose"}}`, "spec.controlPlane.logLevel"},
		{"an unparsable resource quantity", "", `{"controlPlane":{"resources":{"requests":{"cpu":"lots"}}}}`,
			"spec.controlPlane.resources.requests"},
		{"values that are not an object", "", `{"values":"pilot.replicas=2"}`, "spec.values"},
		{"meshConfig that is a list", "", `{"meshConfig":[1,2]}`, "spec.meshConfig"},
		{"an unknown CRD deletion policy", "", `{"crdDeletionPolicy":"Orphan"}`, "spec.crdDeletionPolicy"},
		{"a name too long for revision names", strings.Repeat("m", 41), `{}`, "metadata.name"},
		{"an unknown mTLS mode", "", `{"security":{"mtls":"OPTIONAL"}}`, "spec.security.mtls"},
		{"cert-manager settings with the Istiod CA", "", `{"security":{"certificateAuthority":{"type":"Istiod","certManager":{}}}}`,
			"spec.security.certificateAuthority.certManager requires type CertManager"},
		{"an intermediate that outlives the default root", "",
			`{"security":{"certificateAuthority":{"type":"CertManager","certManager":{"intermediateDuration":"87600h"}}}}`,
			"spec.security.certificateAuthority.certManager.intermediateDuration must be shorter than rootDuration"},
		{"a root shorter than the default intermediate", "",
			`{"security":{"certificateAuthority":{"type":"CertManager","certManager":{"rootDuration":"4380h"}}}}`,
			"spec.security.certificateAuthority.certManager.intermediateDuration must be shorter than rootDuration"},
		{"a renewBefore longer than the intermediate's lifetime", "",
			`{"security":{"certificateAuthority":{"type":"CertManager","certManager":{"intermediateDuration":"720h","renewBefore":"800h"}}}}`,
			"spec.security.certificateAuthority.certManager.renewBefore"},
		{"a trust domain with spaces", "", `{"security":{"trustDomain":"my domain"}}`, "spec.security.trustDomain"},
		{"a pod disruption budget without enabled", "", `{"controlPlane":{"podDisruptionBudget":{}}}`,
			"spec.controlPlane.podDisruptionBudget.enabled"},
		{"two gateways with the same name and namespace", "",
			`{"gateways":[{"name":"ingress","namespace":"gw"},{"name":"ingress","namespace":"gw","type":"Egress"}]}`,
			"spec.gateways[1]: Duplicate value"},
		{"a gateway without a namespace", "", `{"gateways":[{"name":"ingress"}]}`, "spec.gateways[0].namespace"},
		{"an unknown gateway type", "", `{"gateways":[{"name":"ingress","namespace":"gw","type":"Mesh"}]}`, "spec.gateways[0].type"},
		{"gateway replicas together with autoscaling", "",
			`{"gateways":[{"name":"ingress","namespace":"gw","replicas":2,"autoscaling":{"minReplicas":1,"maxReplicas":3}}]}`,
			"replicas and autoscaling of a gateway are mutually exclusive"},
		{"a gateway port out of range", "", `{"gateways":[{"name":"ingress","namespace":"gw","service":{"ports":[{"name":"http","port":70000}]}}]}`,
			"spec.gateways[0].service.ports[0].port"},
		{"an unknown platform", "", `{"platform":"eks"}`, "spec.platform"},
		{"ambient without the CNI node agent", "", `{"profile":"ambient","cni":{"enabled":false}}`,
			"spec.cni.enabled cannot be false with profile ambient"},
		{"an External add-on without url", "", `{"addons":{"grafana":{"mode":"External"}}}`,
			"spec.addons.grafana: Invalid value: url is required when mode is External"},
		{"a malformed add-on url", "", `{"addons":{"prometheus":{"mode":"External","url":"::not-a-url"}}}`,
			"spec.addons.prometheus: Invalid value: url must be an absolute URL"},
		{"a negative retention", "", `{"addons":{"prometheus":{"retention":"-1d"}}}`, "spec.addons.prometheus.retention"},
		{"External tracing without an OTLP endpoint", "", `{"addons":{"tracing":{"mode":"External","url":"http://jaeger.obs:16686"}}}`,
			"otlpEndpoint is required when mode is External"},
		{"an unknown add-on mode", "", `{"addons":{"kiali":{"mode":"Auto"}}}`, "spec.addons.kiali.mode"},
	}
	for _, tc := range cases {
		t.Run("rejects "+tc.name, func(t *testing.T) {
			name := tc.meshName
			if name == "" {
				name = "invalid"
			}
			err := k8sClient.Create(context.Background(), meshFromJSON(t, name, tc.spec))
			if err == nil {
				t.Fatalf("spec %s was accepted", tc.spec)
			}
			if !strings.Contains(err.Error(), tc.wantField) {
				t.Fatalf("error does not name %s: %v", tc.wantField, err)
			}
		})
	}
}

func TestCRDValidationAcceptsTheSamples(t *testing.T) {
	for _, file := range []string{"mesh_v1alpha1_servicemesh_minimal.yaml", "mesh_v1alpha1_servicemesh_full.yaml",
		"mesh_v1alpha1_servicemesh_demo.yaml"} {
		t.Run("accepts "+file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("..", "config", "samples", file))
			if err != nil {
				t.Fatal(err)
			}
			mesh := &meshv1.ServiceMesh{}
			if err := yaml.UnmarshalStrict(data, mesh); err != nil {
				t.Fatalf("sample does not match the Go types: %v", err)
			}
			mesh.Name = "sample-" + strings.TrimSuffix(strings.TrimPrefix(file, "mesh_v1alpha1_servicemesh_"), ".yaml")
			// A dry run asks the API server for its full validation without creating a mesh the controller would act on.
			if err := k8sClient.Create(context.Background(), mesh, client.DryRunAll); err != nil {
				t.Fatalf("sample rejected: %v", err)
			}
			if mesh.Spec.Namespace != "istio-system" {
				t.Errorf("namespace defaulted to %q, want istio-system", mesh.Spec.Namespace)
			}
		})
	}
}

func TestNamespaceIsImmutable(t *testing.T) {
	ctx := context.Background()
	mesh := createMesh(t, "immutable-namespace", func(m *meshv1.ServiceMesh) { m.Spec.Namespace = "mesh-a" })

	patch := client.MergeFrom(mesh.DeepCopy())
	mesh.Spec.Namespace = "mesh-b"
	err := k8sClient.Patch(ctx, mesh, patch)
	if err == nil || !strings.Contains(err.Error(), "spec.namespace is immutable") {
		t.Fatalf("changing spec.namespace: got %v, want an error saying spec.namespace is immutable", err)
	}
}

// Changing the CA type replaces the root every workload trusts; the API refuses it and points at the migration,
// while every other CA setting stays editable. Dry runs ask the API server without changing the meshes.
func TestCATypeIsImmutable(t *testing.T) {
	ctx := context.Background()
	istiod := createMesh(t, "ca-type-istiod")
	certManager := createMesh(t, "ca-type-cert-manager", certManagerCA)
	withCA := func(ca *meshv1.CertificateAuthority) func(*meshv1.ServiceMesh) {
		return func(m *meshv1.ServiceMesh) { m.Spec.Security = &meshv1.Security{CertificateAuthority: ca} }
	}
	cases := []struct {
		name    string
		mesh    *meshv1.ServiceMesh
		change  func(*meshv1.ServiceMesh)
		refused bool
	}{
		{"refuses a mesh without CA settings (Istiod) switching to CertManager", istiod,
			withCA(&meshv1.CertificateAuthority{Type: meshv1.CACertManager}), true},
		{"refuses a CertManager mesh switching to Istiod", certManager,
			withCA(&meshv1.CertificateAuthority{Type: meshv1.CAIstiod}), true},
		{"refuses a CertManager mesh dropping spec.security, which means Istiod", certManager,
			func(m *meshv1.ServiceMesh) { m.Spec.Security = nil }, true},
		{"refuses a CertManager mesh dropping its type, which means Istiod", certManager,
			withCA(&meshv1.CertificateAuthority{}), true},
		{"accepts a mesh without CA settings naming Istiod, the type it already has", istiod,
			withCA(&meshv1.CertificateAuthority{Type: meshv1.CAIstiod}), false},
		{"accepts an Istiod mesh changing its workload certificate lifetime", istiod,
			withCA(&meshv1.CertificateAuthority{WorkloadCertTTL: &metav1.Duration{Duration: 12 * time.Hour}}), false},
		{"accepts a CertManager mesh changing its durations, renewal and workload certificate lifetime", certManager,
			withCA(&meshv1.CertificateAuthority{Type: meshv1.CACertManager, WorkloadCertTTL: &metav1.Duration{Duration: 12 * time.Hour},
				CertManager: &meshv1.CertManagerCA{RootDuration: &metav1.Duration{Duration: 40000 * time.Hour},
					IntermediateDuration: &metav1.Duration{Duration: 4000 * time.Hour}, RenewBefore: &metav1.Duration{Duration: 400 * time.Hour}}}), false},
		{"accepts a CertManager mesh changing its mTLS mode", certManager,
			func(m *meshv1.ServiceMesh) { m.Spec.Security.MTLS = "PERMISSIVE" }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stored := &meshv1.ServiceMesh{}
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(tc.mesh), stored); err != nil {
				t.Fatal(err)
			}
			changed := stored.DeepCopy()
			tc.change(changed)
			err := k8sClient.Patch(ctx, changed, client.MergeFrom(stored), client.DryRunAll)
			switch {
			case tc.refused && err == nil:
				t.Fatal("the change was accepted")
			case tc.refused && (!strings.Contains(err.Error(), "spec.security.certificateAuthority.type cannot be changed") ||
				!strings.Contains(err.Error(), "README")):
				t.Fatalf("the error does not say the type is immutable and where the migration is documented: %v", err)
			case !tc.refused && err != nil:
				t.Fatalf("the change was refused: %v", err)
			}
		})
	}
}

// Moving the CNI node agent leaves every node without traffic redirection for a while; the API refuses it. Dry runs
// ask the API server without changing the mesh.
func TestCNINamespaceIsImmutable(t *testing.T) {
	ctx := context.Background()
	mesh := createMesh(t, "cni-namespace", func(m *meshv1.ServiceMesh) {
		m.Spec.Profile = meshv1.ProfileAmbient
		m.Spec.CNI = &meshv1.CNI{Namespace: "istio-cni"}
	})
	for name, cni := range map[string]*meshv1.CNI{
		"to another namespace":               {Namespace: "kube-system"},
		"by dropping it (kube-system again)": {},
	} {
		t.Run("refuses moving the agent "+name, func(t *testing.T) {
			changed := mesh.DeepCopy()
			changed.Spec.CNI = cni
			err := k8sClient.Patch(ctx, changed, client.MergeFrom(mesh), client.DryRunAll)
			if err == nil || !strings.Contains(err.Error(), "spec.cni.namespace cannot change") {
				t.Fatalf("moving the CNI agent: got %v, want an error saying spec.cni.namespace cannot change", err)
			}
		})
	}
}

// Raw values that turn off what ambient needs cannot be checked by the API server (CEL does not see into free-form
// values): the mesh stalls, naming the value, and nothing is rendered.
func TestAmbientRefusesSidecarOnlyValues(t *testing.T) {
	for field, values := range map[string]string{
		"spec.values.pilot.cni.enabled":              `{"pilot":{"cni":{"enabled":false}}}`,
		"spec.values.pilot.env.PILOT_ENABLE_AMBIENT": `{"pilot":{"env":{"PILOT_ENABLE_AMBIENT":"false"}}}`,
	} {
		t.Run("stalls on "+field, func(t *testing.T) {
			mesh := createMesh(t, "ambient-values", func(m *meshv1.ServiceMesh) {
				m.Spec.Profile = meshv1.ProfileAmbient
				m.Spec.Values = &apiextensionsv1.JSON{Raw: []byte(values)}
			})
			waitForMesh(t, mesh, condition(meshv1.ConditionStalled, metav1.ConditionTrue, meshv1.ReasonInvalidSpec))
			if c := meta.FindStatusCondition(mesh.Status.Conditions, meshv1.ConditionStalled); !strings.Contains(c.Message, field) {
				t.Errorf("Stalled message %q does not name %s", c.Message, field)
			}
			absent(t, &appsv1.Deployment{}, mesh.Spec.Namespace, "istiod")
			deleteMesh(t, mesh)
		})
	}
}
