package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/istio"
	"github.com/meshwright/meshwright/internal/testutil"
)

// previousRelease plays an older Meshwright: until the returned function is called (the operator upgrade), the
// reconciler's catalog embeds only the given versions, each "<version>:<chart source>".
func previousRelease(t *testing.T, versions ...string) (upgradeMeshwright func()) {
	t.Helper()
	doc := "hub: docker.io/istio\nimages: {pilot: pilot, proxy: proxyv2}\nversions:\n"
	for _, v := range versions {
		version, charts, _ := strings.Cut(v, ":")
		doc += fmt.Sprintf("- {version: %s, charts: %s, endOfLife: \"2027-05-31\"}\n", version, charts)
	}
	older, err := istio.LoadCatalog([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	embedded := reconciler.Catalog()
	reconciler.SetCatalog(older)
	upgraded := false
	upgrade := func() {
		if !upgraded {
			reconciler.SetCatalog(embedded)
			upgraded = true
		}
	}
	t.Cleanup(upgrade)
	return upgrade
}

func istiodDeployment(t *testing.T, namespace, name string) *appsv1.Deployment {
	t.Helper()
	dep := &appsv1.Deployment{}
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, dep); err != nil {
		t.Fatal(err)
	}
	return dep
}

func TestMeshwrightUpgradeKeepsTheMinorAMeshRuns(t *testing.T) {
	t.Run("an InPlace mesh without spec.version keeps its minor and no pod template changes", func(t *testing.T) {
		upgradeMeshwright := previousRelease(t, "1.30.4:istio-1.30")
		mesh := installReady(t, "pin-inplace")
		before := istiodDeployment(t, mesh.Spec.Namespace, "istiod")

		upgradeMeshwright() // its catalog's newest version is now 1.31.0
		reconcileAfter(t, func() { poke(t, mesh) })
		reconcileAfter(t, func() { poke(t, mesh) })

		after := istiodDeployment(t, mesh.Spec.Namespace, "istiod")
		if after.Generation != before.Generation || !equality.Semantic.DeepEqual(after.Spec.Template, before.Spec.Template) {
			t.Errorf("the istiod pod template changed on a Meshwright upgrade alone (image %s -> %s)",
				before.Spec.Template.Spec.Containers[0].Image, after.Spec.Template.Spec.Containers[0].Image)
		}
		waitForMesh(t, mesh, condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady))
		if mesh.Status.Version != "1.30.4" {
			t.Errorf("status.version %q, want the running 1.30.4", mesh.Status.Version)
		}

		updateMesh(t, mesh, func(m *meshv1.ServiceMesh) { m.Spec.Version = "1.31" })
		if img := istiodDeployment(t, mesh.Spec.Namespace, "istiod").Spec.Template.Spec.Containers[0].Image; img != "docker.io/istio/pilot:1.31.0" {
			t.Errorf("after spec.version 1.31 istiod runs %s, want 1.31.0", img)
		}
	})

	t.Run("a newer patch release of the running minor follows, announced by an event", func(t *testing.T) {
		upgradeMeshwright := previousRelease(t, "1.30.3:istio-1.30")
		mesh := installReady(t, "pin-patch")
		if img := istiodDeployment(t, mesh.Spec.Namespace, "istiod").Spec.Template.Spec.Containers[0].Image; img != "docker.io/istio/pilot:1.30.3" {
			t.Fatalf("the previous release installed %s, want 1.30.3", img)
		}

		upgradeMeshwright()
		reconcileAfter(t, func() { poke(t, mesh) })
		testutil.Eventually(t, waitTimeout, func() error {
			img := istiodDeployment(t, mesh.Spec.Namespace, "istiod").Spec.Template.Spec.Containers[0].Image
			if img != "docker.io/istio/pilot:1.30.4" {
				return fmt.Errorf("istiod runs %s, want the patch release 1.30.4", img)
			}
			return meshEvent(mesh, "PatchUpgrade")
		})
		markRolledOut(t, mesh.Spec.Namespace, "istiod")
		waitForMesh(t, mesh, condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady))
		if mesh.Status.Version != "1.30.4" {
			t.Errorf("status.version %q, want 1.30.4", mesh.Status.Version)
		}
	})

	t.Run("a RevisionBased mesh without spec.version keeps its revision and the tags where they are", func(t *testing.T) {
		upgradeMeshwright := previousRelease(t, "1.30.4:istio-1.30")
		mesh := createMesh(t, "pin-rev", revisionBasedAt("", 1, time.Hour))
		rev := "pin-rev-1-30-4"
		markRolledOut(t, mesh.Spec.Namespace, "istiod-"+rev)
		waitForMesh(t, mesh, condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady))
		before := istiodDeployment(t, mesh.Spec.Namespace, "istiod-"+rev)

		upgradeMeshwright()
		reconcileAfter(t, func() { poke(t, mesh) })
		reconcileAfter(t, func() { poke(t, mesh) })

		err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: mesh.Spec.Namespace, Name: "istiod-pin-rev-1-31-0"}, &appsv1.Deployment{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("a Meshwright upgrade alone started a 1.31 revision (err %v)", err)
		}
		if after := istiodDeployment(t, mesh.Spec.Namespace, "istiod-"+rev); after.Generation != before.Generation {
			t.Error("the running revision's istiod changed on a Meshwright upgrade alone")
		}
		if got := tagRevision(t, mesh, "default"); got != rev {
			t.Errorf("the default tag points at %q, want %s", got, rev)
		}
		waitForMesh(t, mesh, condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady))
		if mesh.Status.Version != "1.30.4" || len(mesh.Status.Revisions) != 1 {
			t.Errorf("status.version %q revisions %+v, want only 1.30.4", mesh.Status.Version, mesh.Status.Revisions)
		}
	})
}

// jumpClock sets the reconciler's clock to date for the rest of the test, then gives it back the time it would have had.
func jumpClock(t *testing.T, date time.Time) {
	t.Helper()
	was, realWas := clock.Now(), time.Now()
	clock.Set(date)
	t.Cleanup(func() { clock.Set(was.Add(time.Since(realWas))) })
}

func TestEndOfLifeWarnsAndNeverStallsARunningMesh(t *testing.T) {
	pastEOL := time.Date(2027, 6, 2, 9, 0, 0, 0, time.UTC) // Istio 1.30.4's end of life is 2027-05-31
	mesh := installReady(t, "eol-running", func(m *meshv1.ServiceMesh) { m.Spec.Version = "1.30" })
	before := istiodDeployment(t, mesh.Spec.Namespace, "istiod")
	jumpClock(t, pastEOL)

	t.Run("a running mesh past its version's end of life stays Ready, with a warning condition and event", func(t *testing.T) {
		reconcileAfter(t, func() { poke(t, mesh) })
		waitForMesh(t, mesh, condition(meshv1.ConditionVersionSupported, metav1.ConditionFalse, meshv1.ReasonEndOfLife))
		if err := condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady)(mesh); err != nil {
			t.Error(err)
		}
		if err := testutil.WantKStatus(mesh, status.CurrentStatus); err != nil {
			t.Error(err)
		}
		if c := meta.FindStatusCondition(mesh.Status.Conditions, meshv1.ConditionVersionSupported); !strings.Contains(c.Message, "2027-05-31") {
			t.Errorf("the VersionSupported message does not say when support ended: %s", c.Message)
		}
		e, err := findMeshEvent(mesh, meshv1.ReasonEndOfLife)
		if err != nil {
			t.Fatal(err)
		}
		if e.Type != "Warning" {
			t.Errorf("the EndOfLife event is %s, want Warning", e.Type)
		}
		if after := istiodDeployment(t, mesh.Spec.Namespace, "istiod"); after.Generation != before.Generation {
			t.Error("istiod changed because of the date")
		}
	})

	t.Run("the warning goes once the version is supported again", func(t *testing.T) {
		clock.Set(suiteDate)
		reconcileAfter(t, func() { poke(t, mesh) })
		waitForMesh(t, mesh, func(m *meshv1.ServiceMesh) error {
			if c := meta.FindStatusCondition(m.Status.Conditions, meshv1.ConditionVersionSupported); c != nil {
				return fmt.Errorf("VersionSupported still present: %+v", c)
			}
			return condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady)(m)
		})
		if strings.Contains(meta.FindStatusCondition(mesh.Status.Conditions, meshv1.ConditionReady).Message, "end of life") {
			t.Error("Ready still mentions the end of life")
		}
	})
}

// A mesh that runs nothing yet may be refused a version past its end of life: nothing stops by the clock.
func TestANewMeshOnAVersionPastItsEndOfLifeIsRefused(t *testing.T) {
	ctx := context.Background()
	jumpClock(t, time.Date(2027, 6, 2, 9, 0, 0, 0, time.UTC))
	fresh := createMesh(t, "eol-new", func(m *meshv1.ServiceMesh) { m.Spec.Version = "1.30" })
	waitForMesh(t, fresh, condition(meshv1.ConditionStalled, metav1.ConditionTrue, meshv1.ReasonUnsupportedVersion))
	stalled := meta.FindStatusCondition(fresh.Status.Conditions, meshv1.ConditionStalled)
	for _, want := range []string{`spec.version "1.30"`, "end of life"} {
		if !strings.Contains(stalled.Message, want) {
			t.Errorf("Stalled message %q does not say %s", stalled.Message, want)
		}
	}
	err := k8sClient.Get(ctx, client.ObjectKey{Namespace: fresh.Spec.Namespace, Name: "istiod"}, &appsv1.Deployment{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("an istiod was installed for a version past its end of life (err %v)", err)
	}
}
