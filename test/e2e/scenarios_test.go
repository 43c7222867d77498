//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/render"
	"github.com/meshwright/meshwright/internal/testutil"
)

// A deleted ConfigMap and an edited istiod image are restored by the operator running under its own RBAC, and the
// repair is recorded as an event it is allowed to write.
func TestDriftIsRepairedUnderTheOperatorsServiceAccount(t *testing.T) {
	ctx := context.Background()
	mesh := applySample(t, "mesh_v1alpha1_servicemesh_minimal.yaml")
	t.Cleanup(func() { deleteAndWait(t, mesh) })
	waitCurrent(t, mesh)
	ns := mesh.Spec.Namespace

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "istio"}}
	if err := k8sClient.Delete(ctx, cm); err != nil {
		t.Fatal(err)
	}
	dep := istiod(t, mesh)
	wantImage := dep.Spec.Template.Spec.Containers[0].Image
	patch := client.MergeFrom(dep.DeepCopy())
	dep.Spec.Template.Spec.Containers[0].Image = "example.com/not-istio:1"
	if err := k8sClient.Patch(ctx, dep, patch); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	testutil.Eventually(t, time.Minute, func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(cm), &corev1.ConfigMap{}); err != nil {
			return fmt.Errorf("ConfigMap istio: %w", err)
		}
		if got := istiod(t, mesh).Spec.Template.Spec.Containers[0].Image; got != wantImage {
			return fmt.Errorf("istiod image %s, want %s", got, wantImage)
		}
		return nil
	})
	t.Logf("drift repaired after %s", time.Since(start).Round(time.Millisecond))
	testutil.Eventually(t, time.Minute, func() error {
		events := &eventsv1.EventList{}
		if err := k8sClient.List(ctx, events, client.InNamespace(metav1.NamespaceDefault)); err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Regarding.Name == mesh.Name && e.Reason == "DriftRepaired" && e.ReportingController != "" {
				return nil
			}
		}
		return fmt.Errorf("no DriftRepaired event among %d events", len(events.Items))
	})
	waitCurrent(t, mesh)
}

// The cert-manager CA end to end under the operator's RBAC: cert-manager's real CRDs, the CA objects created,
// istiod held back until issuance (simulated: cert-manager's controllers cannot run here), then Ready, then a
// deletion that removes what Meshwright created.
func TestCertManagerCAUnderTheOperatorsServiceAccount(t *testing.T) {
	ctx := context.Background()
	testutil.InstallCertManagerCRDs(t, k8sClient)
	mesh := &meshv1.ServiceMesh{ObjectMeta: metav1.ObjectMeta{Name: "certs"}, Spec: meshv1.ServiceMeshSpec{
		Namespace: "istio-certs",
		Security:  &meshv1.Security{CertificateAuthority: &meshv1.CertificateAuthority{Type: meshv1.CACertManager}},
	}}
	if err := k8sClient.Create(ctx, mesh); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteAndWait(t, mesh) })
	ns := mesh.Spec.Namespace

	first := time.Now().Add(365 * 24 * time.Hour).Truncate(time.Second)
	testutil.SimulateIssuance(t, k8sClient, ns, render.RootCertificateName(mesh.Name), render.RootCertificateName(mesh.Name), first.Add(9*365*24*time.Hour))
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "istiod"}, &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
		t.Fatalf("istiod exists before its intermediate CA was issued (%v)", err)
	}
	testutil.SimulateIssuance(t, k8sClient, ns, render.IntermediateCertificateName(mesh.Name), render.CACertsSecret, first)
	waitCurrent(t, mesh)
	if c := meshCondition(mesh, meshv1.ConditionCertificatesReady); c == nil || c.Status != metav1.ConditionTrue {
		t.Fatalf("CertificatesReady is %+v", c)
	}
	mounts := false
	for _, v := range istiod(t, mesh).Spec.Template.Spec.Volumes {
		mounts = mounts || (v.Secret != nil && v.Secret.SecretName == render.CACertsSecret)
	}
	if !mounts {
		t.Error("istiod does not mount the cacerts Secret")
	}

	deleteAndWait(t, mesh)
	for _, name := range []string{render.RootCertificateName(mesh.Name), render.IntermediateCertificateName(mesh.Name)} {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("cert-manager.io/v1")
		u.SetKind("Certificate")
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); !apierrors.IsNotFound(err) {
			t.Errorf("Certificate %s survived the mesh's deletion (%v)", name, err)
		}
	}
	for _, name := range []string{render.RootCertificateName(mesh.Name), render.CACertsSecret} {
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
			t.Errorf("CA Secret %s survived the mesh's deletion (%v)", name, err)
		}
	}
}

func meshCondition(mesh *meshv1.ServiceMesh, conditionType string) *metav1.Condition {
	for i := range mesh.Status.Conditions {
		if mesh.Status.Conditions[i].Type == conditionType {
			return &mesh.Status.Conditions[i]
		}
	}
	return nil
}
