package controllers

import (
	"context"
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/render"
	"github.com/meshwright/meshwright/internal/testutil"
)

// TestOnlyAMeshInPlaceReadsIstiodFromTheCache checks where readLive lists a mesh's istiod Deployments from, against
// envtest's API server and the manager's cache: the cache for a mesh in place, the API server for a RevisionBased one.
// The istiod is a real Deployment labelled for a mesh that does not exist (so no controller acts for it); the reader
// standing for the API server is the manager's own, counting its lists.
func TestOnlyAMeshInPlaceReadsIstiodFromTheCache(t *testing.T) {
	ctx := context.Background()
	const name, namespace = "livestate", "livestate-system"
	if err := k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{render.LabelOwner: name, render.LabelComponent: render.ComponentIstiod,
		render.LabelRevision: "default", render.LabelManagedBy: render.ManagedBy}
	istiod := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "istiod", Namespace: namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "istiod"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "istiod"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{
					{Name: "discovery", Image: "docker.io/istio/pilot:1.30.4"}}}}},
	}
	if err := k8sClient.Create(ctx, istiod); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := k8sClient.Delete(ctx, istiod); err != nil && !apierrors.IsNotFound(err) {
			t.Error(err)
		}
	})
	testutil.Eventually(t, waitTimeout, func() error {
		cached := &unstructured.UnstructuredList{}
		cached.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("DeploymentList"))
		if err := reconciler.Client.List(ctx, cached, client.InNamespace(namespace), client.MatchingLabels(labels)); err != nil {
			return err
		}
		if len(cached.Items) != 1 {
			return fmt.Errorf("the cache holds %d istiod Deployments, want 1", len(cached.Items))
		}
		return nil
	})

	mesh := func(revisionBased, applied bool) *meshv1.ServiceMesh {
		m := &meshv1.ServiceMesh{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: meshv1.DefaultSpec()}
		m.Spec.Namespace = namespace
		if revisionBased {
			m.Spec.UpdateStrategy = &meshv1.UpdateStrategy{Type: meshv1.UpdateStrategyRevisionBased}
		}
		if applied {
			m.Status.Inventory = &meshv1.Inventory{Entries: []string{"_" + namespace + "__Namespace"}}
		}
		return m
	}
	cases := []struct {
		name      string
		mesh      *meshv1.ServiceMesh
		fromCache bool
	}{
		{"in place, nothing applied", mesh(false, false), true},
		{"in place, applied", mesh(false, true), true},
		{"revision-based, nothing applied", mesh(true, false), false},
		{"revision-based, applied", mesh(true, true), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			server := &countingReader{Reader: managerAPIReader}
			r := &ServiceMeshReconciler{Client: reconciler.Client, APIReader: server}
			deps, err := r.istiodDeployments(ctx, tc.mesh)
			if err != nil {
				t.Fatal(err)
			}
			if (server.lists == 0) != tc.fromCache {
				t.Errorf("%d lists from the API server; want them only when not reading from the cache (%v)", server.lists, tc.fromCache)
			}
			if len(deps) != 1 || istiodVersion(&deps[0], name) != "1.30.4" {
				t.Fatalf("read %d Deployments (%v), want the istiod of Istio 1.30.4", len(deps), deps)
			}
		})
	}
}
