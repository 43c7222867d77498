package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/apply"
	"github.com/meshwright/meshwright/internal/render"
	"github.com/meshwright/meshwright/internal/testutil"
)

func TestInstallBringsUpAReadyControlPlane(t *testing.T) {
	ctx := context.Background()
	mesh := createMesh(t, "install")

	t.Run("it reports progress while istiod rolls out", func(t *testing.T) {
		waitForMesh(t, mesh, condition(meshv1.ConditionReconciling, metav1.ConditionTrue, meshv1.ReasonProgressing))
		if err := testutil.WantKStatus(mesh, status.InProgressStatus); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("it applies every object of the render, labelled and listed in the inventory", func(t *testing.T) {
		if mesh.Status.Version != "1.31.0" || mesh.Status.ActiveRevision != "default" {
			t.Errorf("status version %q revision %q, want 1.31.0 and default", mesh.Status.Version, mesh.Status.ActiveRevision)
		}
		for _, entry := range mesh.Status.Inventory.Entries {
			id, err := apply.ParseID(entry)
			if err != nil {
				t.Fatal(err)
			}
			obj := &metav1.PartialObjectMetadata{}
			mapping, err := k8sClient.RESTMapper().RESTMapping(id.GroupKind)
			if err != nil {
				t.Fatalf("%s: %v", entry, err)
			}
			obj.SetGroupVersionKind(mapping.GroupVersionKind)
			if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: id.Namespace, Name: id.Name}, obj); err != nil {
				t.Fatalf("inventory lists %s but: %v", entry, err)
			}
			if obj.Labels[render.LabelOwner] != mesh.Name || obj.Labels[render.LabelManagedBy] != render.ManagedBy {
				t.Errorf("%s labels %v lack the owner labels", entry, obj.Labels)
			}
		}
		crds := &apiextensionsv1.CustomResourceDefinitionList{}
		if err := k8sClient.List(ctx, crds, client.MatchingLabels{render.LabelOwner: mesh.Name}); err != nil {
			t.Fatal(err)
		}
		if len(crds.Items) < 10 {
			t.Errorf("%d Istio CRDs installed, want the base chart's full set", len(crds.Items))
		}
		dep := &appsv1.Deployment{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: mesh.Spec.Namespace, Name: "istiod"}, dep); err != nil {
			t.Fatal(err)
		}
		if got := dep.Spec.Template.Spec.Containers[0].Image; got != "docker.io/istio/pilot:1.31.0" {
			t.Errorf("istiod image %q, want the catalog's docker.io/istio/pilot:1.31.0", got)
		}
		if len(dep.OwnerReferences) != 1 || dep.OwnerReferences[0].UID != mesh.UID {
			t.Errorf("istiod owner references %v, want the ServiceMesh", dep.OwnerReferences)
		}
		hooks := &admissionv1.MutatingWebhookConfigurationList{}
		if err := k8sClient.List(ctx, hooks, client.MatchingLabels{render.LabelOwner: mesh.Name}); err != nil || len(hooks.Items) != 1 {
			t.Errorf("injection webhooks: %d (err %v), want 1", len(hooks.Items), err)
		}
	})

	t.Run("it is Ready and kstatus Current once istiod is available", func(t *testing.T) {
		markRolledOut(t, mesh.Spec.Namespace, "istiod")
		waitForMesh(t, mesh, condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady))
		if err := testutil.WantKStatus(mesh, status.CurrentStatus); err != nil {
			t.Fatal(err)
		}
		cp := meshv1.ConditionControlPlaneReady
		if err := condition(cp, metav1.ConditionTrue, "")(mesh); err != nil {
			t.Error(err)
		}
	})

	t.Run("a second reconcile of a ready mesh writes nothing and does not re-render", func(t *testing.T) {
		writesBefore, rendersBefore := writes.Writes(), reconciler.Renders.Renders()
		reconcileAfter(t, func() { poke(t, mesh) })
		reconcileAfter(t, func() { poke(t, mesh) })
		if got := writes.Writes() - writesBefore; got != 0 {
			t.Errorf("steady-state reconciles issued %d write requests, want 0: %v", got, writes.Details(int(got)))
		}
		if got := reconciler.Renders.Renders() - rendersBefore; got != 0 {
			t.Errorf("steady-state reconciles rendered %d times, want 0 (render cache)", got)
		}
	})
}

func TestUnsupportedVersionStallsAndTouchesNothing(t *testing.T) {
	ctx := context.Background()
	mesh := installReady(t, "unsupported")
	inventory := mesh.Status.Inventory.Entries

	patch := client.MergeFrom(mesh.DeepCopy())
	mesh.Spec.Version = "1.20"
	if err := k8sClient.Patch(ctx, mesh, patch); err != nil {
		t.Fatal(err)
	}
	waitForMesh(t, mesh, condition(meshv1.ConditionStalled, metav1.ConditionTrue, meshv1.ReasonUnsupportedVersion))

	stalled := mesh.Status.Conditions
	if err := testutil.WantKStatus(mesh, status.FailedStatus); err != nil {
		t.Error(err)
	}
	for _, want := range []string{`spec.version "1.20"`, "1.31.0", "1.30.4"} {
		if msg := fmt.Sprint(stalled); !strings.Contains(msg, want) {
			t.Errorf("Stalled message does not mention %s: %s", want, msg)
		}
	}
	dep := &appsv1.Deployment{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: mesh.Spec.Namespace, Name: "istiod"}, dep); err != nil {
		t.Fatalf("istiod must keep running: %v", err)
	}
	if dep.Spec.Template.Spec.Containers[0].Image != "docker.io/istio/pilot:1.31.0" {
		t.Errorf("istiod image changed to %s", dep.Spec.Template.Spec.Containers[0].Image)
	}
	if got := mesh.Status.Inventory.Entries; len(got) != len(inventory) {
		t.Errorf("inventory changed from %d to %d entries", len(inventory), len(got))
	}
	if mesh.Status.Version != "1.31.0" {
		t.Errorf("status.version %q, want the running 1.31.0", mesh.Status.Version)
	}

	patch = client.MergeFrom(mesh.DeepCopy())
	mesh.Spec.Version = "1.31"
	if err := k8sClient.Patch(ctx, mesh, patch); err != nil {
		t.Fatal(err)
	}
	waitForMesh(t, mesh, condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady))
	if err := testutil.WantKStatus(mesh, status.CurrentStatus); err != nil {
		t.Errorf("after going back to a supported version: %v", err)
	}
}

// A ServiceMesh "default" without a spec, the sample most users apply first, is installed from the render made
// while the operator started (its UID is the only thing added), and the API server's defaults for an empty spec are
// the ones the operator rendered ahead of time.
func TestTheDefaultMeshInstallsFromTheWarmRender(t *testing.T) {
	ctx := context.Background()
	hits := reconciler.Renders.WarmHits()
	// Written as `kubectl apply` sends `metadata: {name: default}` and nothing else: no spec at all.
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(meshv1.GroupVersion.WithKind("ServiceMesh"))
	u.SetName("default")
	if err := k8sClient.Create(ctx, u); err != nil {
		t.Fatal(err)
	}
	mesh := &meshv1.ServiceMesh{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Name: "default"}, mesh); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteMesh(t, mesh) })
	if !equality.Semantic.DeepEqual(mesh.Spec, meshv1.DefaultSpec()) {
		t.Fatalf("the API server defaulted an empty spec to %+v; meshv1.DefaultSpec() says %+v", mesh.Spec, meshv1.DefaultSpec())
	}
	waitForMesh(t, mesh, condition(meshv1.ConditionReconciling, metav1.ConditionTrue, meshv1.ReasonProgressing))
	if got := reconciler.Renders.WarmHits() - hits; got != 1 {
		t.Errorf("the first reconcile of the default mesh used the warm render %d times, want 1", got)
	}
	dep := &appsv1.Deployment{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: meshv1.DefaultNamespace, Name: "istiod"}, dep); err != nil {
		t.Fatal(err)
	}
	if len(dep.OwnerReferences) != 1 || dep.OwnerReferences[0].UID != mesh.UID {
		t.Errorf("istiod owner references %v, want the ServiceMesh %s", dep.OwnerReferences, mesh.UID)
	}
}
