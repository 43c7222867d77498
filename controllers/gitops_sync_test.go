package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/render"
	"github.com/meshwright/meshwright/internal/testutil"
)

// argoCDFieldManager is the field manager Argo CD's server-side apply uses.
const argoCDFieldManager = "argocd-controller"

// Argo CD syncing a sample with server-side apply must see no difference once Meshwright reconciled it: a controller
// that wrote into its own spec, labels or annotations would keep the Application OutOfSync forever.
func TestArgoCDServerSideApplyOfASampleStaysInSync(t *testing.T) {
	cases := []struct {
		sample string
		// bringUp plays the controllers envtest does not run until the mesh can become Ready.
		bringUp func(t *testing.T, name, namespace string)
	}{
		{"mesh_v1alpha1_servicemesh_minimal.yaml", rollOutIstiod},
		{"mesh_v1alpha1_servicemesh_full.yaml", func(t *testing.T, name, namespace string) {
			// The full sample's CertManager CA needs cert-manager: its real CRDs, and a simulated issuance.
			testutil.InstallCertManagerCRDs(t, k8sClient)
			waitForLiveMesh(t, name, condition(meshv1.ConditionCertificatesReady, metav1.ConditionFalse, meshv1.ReasonCertificatesIssuing))
			testutil.SimulateIssuance(t, k8sClient, namespace, render.RootCertificateName(name), render.RootCertificateName(name), farFuture)
			testutil.SimulateIssuance(t, k8sClient, namespace, render.IntermediateCertificateName(name), render.CACertsSecret, farFuture)
			testutil.Eventually(t, waitTimeout, func() error {
				if !istiodExists(t, namespace) {
					return fmt.Errorf("istiod not created yet")
				}
				return nil
			})
			rollOutIstiod(t, name, namespace)
			// Its gateways and CNI agent, applied once istiod is ready.
			for _, gw := range []struct{ namespace, name string }{{"istio-ingress", "istio-ingressgateway"}, {namespace, "istio-egressgateway"}} {
				markRolledOut(t, gw.namespace, gw.name)
			}
			markDaemonSetRolledOut(t, "kube-system", "istio-cni-node")
		}},
	}
	for _, tc := range cases {
		t.Run("re-applying "+tc.sample+" after Meshwright made it Ready changes nothing Argo CD compares", func(t *testing.T) {
			manifest := readManifest(t, "../config/samples/"+tc.sample)
			name := manifest.GetName()
			serverSideApply(t, manifest, false)
			t.Cleanup(func() { deleteMesh(t, &meshv1.ServiceMesh{ObjectMeta: metav1.ObjectMeta{Name: name}}) })
			namespace, _, _ := unstructured.NestedString(waitForLiveMesh(t, name, reconciled).Object, "spec", "namespace")
			tc.bringUp(t, name, namespace)
			before := waitForLiveMesh(t, name, condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady))

			t.Run("a dry run of the manifest predicts the live spec and generation", func(t *testing.T) {
				predicted := serverSideApply(t, manifest, true)
				assertSameDesiredState(t, predicted, before)
			})
			after := serverSideApply(t, manifest, false)
			t.Run("the re-apply leaves spec, labels, annotations and generation unchanged", func(t *testing.T) {
				assertSameDesiredState(t, after, before)
			})
			t.Run("argocd-controller owns exactly the fields of the manifest, and nobody else owns any of them", func(t *testing.T) {
				assertArgoCDOwnsExactly(t, after, manifest)
			})
		})
	}
}

// farFuture is a certificate expiry no test run reaches.
var farFuture = metav1.Now().AddDate(10, 0, 0)

func rollOutIstiod(t *testing.T, _, namespace string) { markRolledOut(t, namespace, "istiod") }

// serverSideApply applies a copy of manifest as Argo CD does (server-side, field manager argocd-controller, no force:
// a conflict would mean someone else owns a field of the manifest) and returns the server's answer.
func serverSideApply(t *testing.T, manifest *unstructured.Unstructured, dryRun bool) *unstructured.Unstructured {
	t.Helper()
	obj := manifest.DeepCopy()
	opts := []client.ApplyOption{client.FieldOwner(argoCDFieldManager)}
	if dryRun {
		opts = append(opts, client.DryRunAll)
	}
	if err := k8sClient.Apply(context.Background(), client.ApplyConfigurationFromUnstructured(obj), opts...); err != nil {
		t.Fatalf("server-side apply (dry run %v): %v", dryRun, err)
	}
	return obj
}

func assertSameDesiredState(t *testing.T, got, want *unstructured.Unstructured) {
	t.Helper()
	if !equality.Semantic.DeepEqual(got.Object["spec"], want.Object["spec"]) {
		t.Errorf("spec changed:\n got %v\nwant %v", got.Object["spec"], want.Object["spec"])
	}
	if !equality.Semantic.DeepEqual(got.GetLabels(), want.GetLabels()) {
		t.Errorf("labels changed: got %v, want %v", got.GetLabels(), want.GetLabels())
	}
	if !equality.Semantic.DeepEqual(got.GetAnnotations(), want.GetAnnotations()) {
		t.Errorf("annotations changed: got %v, want %v", got.GetAnnotations(), want.GetAnnotations())
	}
	if got.GetGeneration() != want.GetGeneration() {
		t.Errorf("generation %d, want %d", got.GetGeneration(), want.GetGeneration())
	}
}

func assertArgoCDOwnsExactly(t *testing.T, live, manifest *unstructured.Unstructured) {
	t.Helper()
	want := manifestFields(manifest.Object, "")
	var owned []string
	for _, entry := range live.GetManagedFields() {
		fields, err := managedLeaves(entry.FieldsV1)
		if err != nil {
			t.Fatal(err)
		}
		if entry.Manager == argoCDFieldManager && entry.Operation == metav1.ManagedFieldsOperationApply {
			owned = fields
			continue
		}
		for _, f := range fields {
			if slices.Contains(want, f) || strings.HasPrefix(f, ".spec") {
				t.Errorf("%s (%s, subresource %q) also owns %s", entry.Manager, entry.Operation, entry.Subresource, f)
			}
		}
	}
	slices.Sort(owned)
	if !slices.Equal(owned, want) {
		t.Errorf("argocd-controller owns\n %v\nwant the manifest's fields\n %v", owned, want)
	}
}

// manifestFields lists the leaf fields a manifest sets, as managedFields record them: identity (apiVersion, kind,
// metadata.name) is not recorded, an empty object is a leaf, an atomic list is a leaf, and the items of
// spec.gateways (a list map keyed by name and namespace) are recorded by key.
func manifestFields(obj map[string]any, prefix string) []string {
	var out []string
	for key, value := range obj {
		path := prefix + "." + key
		switch path {
		case ".apiVersion", ".kind", ".metadata.name":
			continue
		case ".spec.gateways":
			for _, item := range value.([]any) {
				gw := item.(map[string]any)
				out = append(out, manifestFields(gw, fmt.Sprintf(`%s.k:{"name":%q,"namespace":%q}`, path, gw["name"], gw["namespace"]))...)
			}
			continue
		}
		if m, ok := value.(map[string]any); ok && len(m) > 0 {
			out = append(out, manifestFields(m, path)...)
			continue
		}
		out = append(out, path)
	}
	slices.Sort(out)
	return out
}

// managedLeaves lists the leaf fields of a managedFields entry ("f:spec": {"f:version": {}} is ".spec.version").
func managedLeaves(fields *metav1.FieldsV1) ([]string, error) {
	if fields == nil {
		return nil, nil
	}
	var tree map[string]any
	if err := json.Unmarshal(fields.Raw, &tree); err != nil {
		return nil, fmt.Errorf("decoding managedFields: %w", err)
	}
	var out []string
	var walk func(node map[string]any, path string)
	walk = func(node map[string]any, path string) {
		leaf := true
		for key, child := range node {
			if key == "." {
				continue
			}
			leaf = false
			m, _ := child.(map[string]any)
			walk(m, path+"."+strings.TrimPrefix(key, "f:"))
		}
		if leaf && path != "" {
			out = append(out, path)
		}
	}
	walk(tree, "")
	slices.Sort(out)
	return out, nil
}
