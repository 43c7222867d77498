package controllers

import (
	"context"
	"strings"
	"testing"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/testutil"
)

// Every profile the CRD accepts is implemented end to end: it renders istiod and the mesh becomes Ready (ambient once
// its node agents rolled out too).
func TestEveryAcceptedProfileBecomesReady(t *testing.T) {
	for _, profile := range meshv1.Profiles {
		t.Run("profile "+profile+" runs istiod and becomes Ready", func(t *testing.T) {
			var mesh *meshv1.ServiceMesh
			if profile == meshv1.ProfileAmbient {
				mesh = createMesh(t, "profile-"+profile, func(m *meshv1.ServiceMesh) { m.Spec.Profile = profile })
				markRolledOut(t, mesh.Spec.Namespace, "istiod")
				markDaemonSetRolledOut(t, "kube-system", "istio-cni-node")
				markDaemonSetRolledOut(t, mesh.Spec.Namespace, "ztunnel")
				waitForMesh(t, mesh, condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady))
			} else {
				mesh = installReady(t, "profile-"+profile, func(m *meshv1.ServiceMesh) { m.Spec.Profile = profile })
			}
			dep := &appsv1.Deployment{}
			if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: mesh.Spec.Namespace, Name: "istiod"}, dep); err != nil {
				t.Fatalf("no istiod Deployment: %v", err)
			}
			if err := testutil.WantKStatus(mesh, status.CurrentStatus); err != nil {
				t.Error(err)
			}
			deleteMesh(t, mesh)
		})
	}
}

// Profiles whose components Meshwright does not render yet are refused at admission, with a message listing the
// accepted ones.
func TestUnimplementedProfilesAreRefused(t *testing.T) {
	for _, profile := range []string{"remote"} {
		t.Run("profile "+profile+" is refused", func(t *testing.T) {
			err := k8sClient.Create(context.Background(), meshFromJSON(t, "profile-"+profile, `{"profile":"`+profile+`"}`))
			if err == nil {
				t.Fatalf("profile %s was accepted", profile)
			}
			for _, want := range []string{"spec.profile", `Unsupported value: "` + profile + `"`, `supported values: "default"`} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not say %q: %v", want, err)
				}
			}
		})
	}
}
