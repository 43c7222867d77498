package controllers

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/render"
	"github.com/meshwright/meshwright/internal/testutil"
)

// TestOnlyAMeshInPlaceReadsIstiodFromTheCache checks where readLive lists a mesh's istiod Deployments from: the cache
// for a mesh in place, the API server for a RevisionBased one. The cache and the API server
// are stand-ins holding different Deployments, so the answer says which was read; how the real ones answer is the
// envtest suite's (revisions_test.go, status_rebuild_test.go).
func TestOnlyAMeshInPlaceReadsIstiodFromTheCache(t *testing.T) {
	istiod := func(version string) appsv1.Deployment {
		return appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "istiod", Namespace: "istio-system", Labels: map[string]string{
				render.LabelOwner: "default", render.LabelComponent: render.ComponentIstiod, render.LabelRevision: "default",
				render.LabelManagedBy: render.ManagedBy}},
			Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "discovery", Image: "docker.io/istio/pilot:" + version}}}}},
		}
	}
	mesh := func(revisionBased, applied bool) *meshv1.ServiceMesh {
		m := &meshv1.ServiceMesh{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: meshv1.DefaultSpec()}
		m.Spec.Namespace = "istio-system"
		if revisionBased {
			m.Spec.UpdateStrategy = &meshv1.UpdateStrategy{Type: meshv1.UpdateStrategyRevisionBased}
		}
		if applied {
			m.Status.Inventory = &meshv1.Inventory{Entries: []string{"_istio-system__Namespace"}}
		}
		return m
	}
	cases := []struct {
		name        string
		mesh        *meshv1.ServiceMesh
		fromCache   bool
		wantVersion string
	}{
		{"in place, nothing applied", mesh(false, false), true, "1.30.4"},
		{"in place, applied", mesh(false, true), true, "1.30.4"},
		{"revision-based, nothing applied", mesh(true, false), false, "1.31.0"},
		{"revision-based, applied", mesh(true, true), false, "1.31.0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cached := istiod("1.30.4")
			server := &listingReader{deployments: []appsv1.Deployment{istiod("1.31.0")}}
			r := &ServiceMeshReconciler{APIReader: server,
				Client: fake.NewClientBuilder().WithScheme(testutil.Scheme).WithObjects(&cached).Build()}
			deps, err := r.istiodDeployments(context.Background(), tc.mesh)
			if err != nil {
				t.Fatal(err)
			}
			if lists := server.lists.Load(); (lists == 0) != tc.fromCache {
				t.Errorf("%d lists from the API server; want them only when not reading from the cache (%v)", lists, tc.fromCache)
			}
			if len(deps) != 1 || istiodVersion(&deps[0], "default") != tc.wantVersion {
				t.Fatalf("read %d Deployments (%v), want istiod %s", len(deps), deps, tc.wantVersion)
			}
		})
	}
}
