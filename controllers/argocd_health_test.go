package controllers

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
)

var updateArgoCD = flag.Bool("update-argocd", false, "capture config/argocd/testdata from the ServiceMeshes this suite drives")

const argoCDTestdata = "../config/argocd/testdata"

// capturedMesh is one state of a ServiceMesh the Argo CD health script is tested on.
type capturedMesh struct {
	file string
	obj  *unstructured.Unstructured
}

// The Argo CD health script (config/argocd/health.lua, tested by internal/argocd) is tested on ServiceMesh objects
// captured here from the operator, not written by hand. Run with -update-argocd to capture them again; without it,
// the test drives the same states and fails when a captured file no longer has the status shape the operator
// produces (timestamps, uids and messages aside).
func TestArgoCDHealthTestdataIsCapturedFromTheOperator(t *testing.T) {
	states := driveMeshForArgoCD(t)
	for _, s := range states {
		path := filepath.Join(argoCDTestdata, s.file)
		if *updateArgoCD {
			if err := writeCaptured(path, s.obj); err != nil {
				t.Fatal(err)
			}
		}
		t.Run(s.file+" has the status shape the operator produces", func(t *testing.T) {
			captured := readManifest(t, path)
			if got, want := statusShape(captured), statusShape(s.obj); !slices.Equal(got, want) {
				t.Errorf("captured %v\n    live %v\nrun `make argocd` and review config/argocd/health_test.yaml", got, want)
			}
		})
	}
}

// driveMeshForArgoCD takes the minimal sample through every state Argo CD can see, capturing the object the API
// server returned or stored in each.
func driveMeshForArgoCD(t *testing.T) []capturedMesh {
	t.Helper()
	ctx := context.Background()
	var states []capturedMesh
	capture := func(file string, obj *unstructured.Unstructured) {
		states = append(states, capturedMesh{file: file, obj: obj.DeepCopy()})
	}

	mesh := readManifest(t, "../config/samples/mesh_v1alpha1_servicemesh_minimal.yaml")
	name := mesh.GetName()
	if err := k8sClient.Create(ctx, mesh); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteMesh(t, &meshv1.ServiceMesh{ObjectMeta: metav1.ObjectMeta{Name: name}}) })
	capture("created.yaml", mesh) // the server's response: before any reconcile

	rollingOut := waitForLiveMesh(t, name, condition(meshv1.ConditionControlPlaneReady, "False", meshv1.ReasonProgressing))
	capture("rolling-out.yaml", rollingOut)
	namespace, _, _ := unstructured.NestedString(rollingOut.Object, "spec", "namespace")
	markRolledOut(t, namespace, "istiod")
	capture("ready.yaml", waitForLiveMesh(t, name, condition(meshv1.ConditionReady, "True", meshv1.ReasonReady)))

	// The patch response is the object right after the spec change, before Meshwright could observe it.
	changed := liveMesh(t, name)
	patch := []byte(`{"spec":{"controlPlane":{"logLevel":"debug"}}}`)
	if err := k8sClient.Patch(ctx, changed, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
	capture("spec-changed.yaml", changed)
	waitForLiveMesh(t, name, reconciled)

	unsupported := liveMesh(t, name)
	patch = []byte(`{"spec":{"version":"1.2"}}`)
	if err := k8sClient.Patch(ctx, unsupported, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
	capture("stalled.yaml", waitForLiveMesh(t, name, condition(meshv1.ConditionStalled, "True", meshv1.ReasonUnsupportedVersion)))

	capture("deleting.yaml", deleteReturningObject(t, name))
	return states
}

// deleteReturningObject deletes the ServiceMesh and returns the object the API server answered with: marked for
// deletion and still held by Meshwright's finalizer (a later read could find it already gone).
func deleteReturningObject(t *testing.T, name string) *unstructured.Unstructured {
	t.Helper()
	config := rest.CopyConfig(cfg)
	config.GroupVersion = &meshv1.GroupVersion
	config.APIPath = "/apis"
	config.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	rc, err := rest.RESTClientFor(config)
	if err != nil {
		t.Fatal(err)
	}
	body, err := rc.Delete().Resource("servicemeshes").Name(name).Do(context.Background()).Raw()
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(body); err != nil {
		t.Fatal(err)
	}
	if u.GetKind() != "ServiceMesh" || u.GetDeletionTimestamp() == nil || !slices.Contains(u.GetFinalizers(), meshv1.Finalizer) {
		t.Fatalf("the delete returned %s, not a ServiceMesh held by Meshwright's finalizer", body)
	}
	return u
}

// statusShape is what the health script reads from an object, without what changes from run to run (timestamps,
// uids, messages): whether it has a status, is deleting, has its generation observed, and its conditions.
func statusShape(u *unstructured.Unstructured) []string {
	generation, _, _ := unstructured.NestedInt64(u.Object, "metadata", "generation")
	observed, hasObserved, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	_, hasStatus := u.Object["status"]
	shape := []string{
		fmt.Sprintf("status present: %v", hasStatus),
		fmt.Sprintf("deleting: %v", u.GetDeletionTimestamp() != nil),
		fmt.Sprintf("generation observed: %v", hasObserved && observed == generation),
		fmt.Sprintf("finalizers: %v", u.GetFinalizers()),
	}
	conditions, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	var conds []string
	for _, c := range conditions {
		m, _ := c.(map[string]any)
		conds = append(conds, fmt.Sprintf("condition %v=%v (%v)", m["type"], m["status"], m["reason"]))
	}
	slices.Sort(conds)
	return append(shape, conds...)
}

// writeCaptured writes the object as `kubectl get -o yaml` shows it, without managedFields.
func writeCaptured(path string, obj *unstructured.Unstructured) error {
	obj = obj.DeepCopy()
	obj.SetManagedFields(nil)
	data, err := yaml.Marshal(obj.Object)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	header := "# Captured from the operator by controllers/argocd_health_test.go (`make argocd`, or go test ./controllers -run\n" +
		"# TestArgoCDHealthTestdata -update-argocd); do not edit. The expected health is in ../health_test.yaml.\n"
	if err := os.WriteFile(path, append([]byte(header), data...), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
