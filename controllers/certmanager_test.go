package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/apply"
	"github.com/meshwright/meshwright/internal/render"
	"github.com/meshwright/meshwright/internal/testutil"
)

func certManagerCA(m *meshv1.ServiceMesh) {
	m.Spec.Security = &meshv1.Security{CertificateAuthority: &meshv1.CertificateAuthority{Type: meshv1.CACertManager}}
}

func certificate(t *testing.T, namespace, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(certificateGVK)
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, u); err != nil {
		t.Fatalf("Certificate %s: %v", name, err)
	}
	return u
}

func istiodExists(t *testing.T, namespace string) bool {
	err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: "istiod"}, &appsv1.Deployment{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

func TestCertManagerCA(t *testing.T) {
	ctx := context.Background()
	mesh := createMesh(t, "certs", certManagerCA)
	ns := mesh.Spec.Namespace

	t.Run("without cert-manager it says what to install and does not start istiod", func(t *testing.T) {
		waitForMesh(t, mesh, condition(meshv1.ConditionCertificatesReady, metav1.ConditionFalse, meshv1.ReasonCertManagerMissing))
		var msg string
		for _, c := range mesh.Status.Conditions {
			if c.Type == meshv1.ConditionCertificatesReady {
				msg = c.Message
			}
		}
		for _, want := range []string{"spec.security.certificateAuthority.type", "cert-manager", "install"} {
			if !strings.Contains(strings.ToLower(msg), strings.ToLower(want)) {
				t.Errorf("message %q does not mention %q", msg, want)
			}
		}
		if istiodExists(t, ns) {
			t.Error("istiod was started without its CA")
		}
	})

	t.Run("once cert-manager's CRDs appear it creates the CA objects by itself, accepted by their real schemas", func(t *testing.T) {
		testutil.InstallCertManagerCRDs(t, k8sClient)
		waitForMesh(t, mesh, condition(meshv1.ConditionCertificatesReady, metav1.ConditionFalse, meshv1.ReasonCertificatesIssuing))
		root := certificate(t, ns, render.RootCertificateName(mesh.Name))
		if isCA, _, _ := unstructured.NestedBool(root.Object, "spec", "isCA"); !isCA {
			t.Error("the root Certificate is not a CA")
		}
		inter := certificate(t, ns, render.IntermediateCertificateName(mesh.Name))
		if s, _, _ := unstructured.NestedString(inter.Object, "spec", "secretName"); s != render.CACertsSecret {
			t.Errorf("intermediate secretName %q, want cacerts", s)
		}
		for _, issuer := range []string{mesh.Name + "-selfsigned", mesh.Name + "-root-ca"} {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(certificateGVK.GroupVersion().WithKind("Issuer"))
			if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: issuer}, u); err != nil {
				t.Errorf("Issuer %s: %v", issuer, err)
			}
		}
		if istiodExists(t, ns) {
			t.Error("istiod was started before its CA was issued")
		}
	})

	t.Run("after issuance istiod starts, and a rotation updates status and the expiry metric without restarting istiod (simulated issuance)", func(t *testing.T) {
		first := time.Now().Add(365 * 24 * time.Hour).Truncate(time.Second)
		testutil.SimulateIssuance(t, k8sClient, ns, render.RootCertificateName(mesh.Name), render.RootCertificateName(mesh.Name), first.Add(9*365*24*time.Hour))
		testutil.SimulateIssuance(t, k8sClient, ns, render.IntermediateCertificateName(mesh.Name), render.CACertsSecret, first)
		waitForMesh(t, mesh, condition(meshv1.ConditionCertificatesReady, metav1.ConditionTrue, ""))
		testutil.Eventually(t, waitTimeout, func() error {
			if !istiodExists(t, ns) {
				return fmt.Errorf("istiod not created yet")
			}
			return nil
		})
		markRolledOut(t, ns, "istiod")
		waitForMesh(t, mesh, condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady))
		dep := &appsv1.Deployment{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "istiod"}, dep); err != nil {
			t.Fatal(err)
		}
		mountsCacerts := false
		for _, v := range dep.Spec.Template.Spec.Volumes {
			mountsCacerts = mountsCacerts || (v.Secret != nil && v.Secret.SecretName == render.CACertsSecret)
		}
		if !mountsCacerts {
			t.Fatal("istiod does not mount the cacerts Secret")
		}
		if got, want := dep.Spec.Template.Annotations[render.AnnotationCARoot], fingerprint("simulated root"); got != want {
			t.Errorf("istiod's pod template names the root %q, want %q (ca.crt of cacerts)", got, want)
		}
		templateBefore := dep.Spec.Template.DeepCopy()

		rotated := first.Add(30 * 24 * time.Hour)
		reconcileAfter(t, func() {
			testutil.SimulateIssuance(t, k8sClient, ns, render.IntermediateCertificateName(mesh.Name), render.CACertsSecret, rotated)
		})
		waitForMesh(t, mesh, func(m *meshv1.ServiceMesh) error {
			for _, c := range m.Status.Certificates {
				if c.Name == render.IntermediateCertificateName(m.Name) && c.NotAfter != nil && c.NotAfter.Time.Equal(rotated) {
					return nil
				}
			}
			return fmt.Errorf("status.certificates %+v does not show the rotated notAfter %s", m.Status.Certificates, rotated)
		})
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(dep), dep); err != nil {
			t.Fatal(err)
		}
		if !equalTemplates(templateBefore, &dep.Spec.Template) {
			t.Error("the rotation changed istiod's pod template; istiod reloads the mounted cacerts by itself and must not be restarted")
		}
		var expiry float64
		testutil.Eventually(t, waitTimeout, func() error {
			expiry = caExpiryFor(t, mesh.Name, render.IntermediateCertificateName(mesh.Name))
			if want := time.Until(rotated).Seconds(); expiry < want-120 || expiry > want+120 {
				return fmt.Errorf("meshwright_ca_certificate_expiry_seconds = %v, want about %v", expiry, want)
			}
			return nil
		})
	})

	t.Run("the CA Secrets carry Meshwright's labels and are inventoried, but never applied by Meshwright", func(t *testing.T) {
		for _, name := range []string{render.CACertsSecret, render.RootCertificateName(mesh.Name)} {
			secret := &corev1.Secret{}
			if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, secret); err != nil {
				t.Fatal(err)
			}
			l := secret.Labels
			if l[render.LabelOwner] != mesh.Name || l[render.LabelManagedBy] != render.ManagedBy || l[render.LabelComponent] != render.ComponentCertificates {
				t.Errorf("Secret %s has labels %v, want the owner, managed-by and component labels from the Certificate's secretTemplate", name, l)
			}
			for _, f := range secret.ManagedFields {
				if f.Manager == apply.FieldOwner {
					t.Errorf("Meshwright wrote Secret %s (managedFields %+v); cert-manager alone writes it", name, f)
				}
			}
			waitForMesh(t, mesh, func(m *meshv1.ServiceMesh) error {
				if id := ns + "_" + name + "__Secret"; m.Status.Inventory == nil || !slices.Contains(m.Status.Inventory.Entries, id) {
					return fmt.Errorf("status.inventory lacks %s: %v", id, m.Status.Inventory)
				}
				return nil
			})
		}
	})

	t.Run("a renewed root reaching cacerts restarts istiod, which does not hot-reload a new root", func(t *testing.T) {
		renewed := time.Now().Add(400 * 24 * time.Hour).Truncate(time.Second)
		testutil.SimulateIssuanceWithRoot(t, k8sClient, ns, render.IntermediateCertificateName(mesh.Name), render.CACertsSecret, renewed, "renewed root")
		testutil.Eventually(t, waitTimeout, func() error {
			dep := &appsv1.Deployment{}
			if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "istiod"}, dep); err != nil {
				return err
			}
			if got, want := dep.Spec.Template.Annotations[render.AnnotationCARoot], fingerprint("renewed root"); got != want {
				return fmt.Errorf("istiod's pod template names the root %q, want %q", got, want)
			}
			return nil
		})
		markRolledOut(t, ns, "istiod")
		waitForMesh(t, mesh, condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady))
	})

	t.Run("the mesh-wide PeerAuthentication follows spec.security.mtls", func(t *testing.T) {
		for _, mode := range []string{"STRICT", "PERMISSIVE", "DISABLE"} {
			patch := client.MergeFrom(mesh.DeepCopy())
			mesh.Spec.Security.MTLS = mode
			if err := k8sClient.Patch(ctx, mesh, patch); err != nil {
				t.Fatal(err)
			}
			testutil.Eventually(t, waitTimeout, func() error {
				pa := &unstructured.Unstructured{}
				pa.SetGroupVersionKind(render.PeerAuthenticationGVK)
				if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "default"}, pa); err != nil {
					return err
				}
				if got, _, _ := unstructured.NestedString(pa.Object, "spec", "mtls", "mode"); got != mode {
					return fmt.Errorf("mode %s, want %s", got, mode)
				}
				return nil
			})
		}
	})

	t.Run("deleting the mesh removes the certificates, issuers and CA Secrets, and stops exporting their expiry", func(t *testing.T) {
		if caExpiryFor(t, mesh.Name, render.RootCertificateName(mesh.Name)) <= 0 {
			t.Fatal("the root's expiry is not exported before the deletion; the check below would prove nothing")
		}
		deleteMesh(t, mesh)
		for _, ref := range []struct{ kind, name string }{
			{"Certificate", render.RootCertificateName(mesh.Name)}, {"Certificate", render.IntermediateCertificateName(mesh.Name)},
			{"Issuer", mesh.Name + "-selfsigned"}, {"Issuer", mesh.Name + "-root-ca"},
		} {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(certificateGVK.GroupVersion().WithKind(ref.kind))
			err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.name}, u)
			if !apierrors.IsNotFound(err) && u.GetDeletionTimestamp() == nil {
				t.Errorf("%s %s survived the deletion (%v)", ref.kind, ref.name, err)
			}
		}
		for _, name := range []string{render.CACertsSecret, render.RootCertificateName(mesh.Name)} {
			err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &corev1.Secret{})
			if !apierrors.IsNotFound(err) {
				t.Errorf("Secret %s survived the deletion (%v): istiod would sign with an intermediate nobody renews", name, err)
			}
		}
		for _, cert := range []string{render.RootCertificateName(mesh.Name), render.IntermediateCertificateName(mesh.Name)} {
			if v := caExpiryFor(t, mesh.Name, cert); v != 0 {
				t.Errorf("meshwright_ca_certificate_expiry_seconds{certificate=%q} is still exported (%v) after the mesh is gone", cert, v)
			}
		}
	})
}

func TestCertManagerCAWithTheUsersIssuer(t *testing.T) {
	ctx := context.Background()
	testutil.InstallCertManagerCRDs(t, k8sClient)
	userIssuer := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": map[string]any{"name": "corp-pki"},
		"spec": map[string]any{"selfSigned": map[string]any{}}}}
	if err := k8sClient.Create(ctx, userIssuer); err != nil {
		t.Fatal(err)
	}
	mesh := createMesh(t, "user-issuer", func(m *meshv1.ServiceMesh) {
		certManagerCA(m)
		m.Spec.Security.CertificateAuthority.CertManager = &meshv1.CertManagerCA{
			IssuerRef: &meshv1.IssuerReference{Name: "corp-pki", Kind: "ClusterIssuer"}}
	})
	waitForMesh(t, mesh, condition(meshv1.ConditionCertificatesReady, metav1.ConditionFalse, meshv1.ReasonCertificatesIssuing))
	inter := certificate(t, mesh.Spec.Namespace, render.IntermediateCertificateName(mesh.Name))
	ref, _, _ := unstructured.NestedStringMap(inter.Object, "spec", "issuerRef")
	if ref["name"] != "corp-pki" || ref["kind"] != "ClusterIssuer" || ref["group"] != "cert-manager.io" {
		t.Errorf("issuerRef %v, want the user's ClusterIssuer corp-pki", ref)
	}
	for _, e := range mesh.Status.Inventory.Entries {
		if strings.Contains(e, "_Issuer") || strings.Contains(e, render.RootCertificateName(mesh.Name)) {
			t.Errorf("with the user's issuer Meshwright must not create its own root or issuers: %s", e)
		}
	}

	deleteMesh(t, mesh)
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(userIssuer), userIssuer); err != nil {
		t.Errorf("the user's ClusterIssuer did not survive the ServiceMesh deletion: %v", err)
	}
	err := k8sClient.Get(ctx, client.ObjectKeyFromObject(inter), inter)
	if !apierrors.IsNotFound(err) && inter.GetDeletionTimestamp() == nil {
		t.Errorf("the intermediate Certificate Meshwright created survived the deletion: %v", err)
	}
}

func equalTemplates(a, b *corev1.PodTemplateSpec) bool {
	return equality.Semantic.DeepEqual(a, b)
}

// caExpiryFor reads meshwright_ca_certificate_expiry_seconds for one certificate from the metrics registry.
func caExpiryFor(t *testing.T, mesh, cert string) float64 {
	t.Helper()
	v, err := testutil.MetricSum(ctrlmetrics.Registry, "meshwright_ca_certificate_expiry_seconds",
		map[string]string{"servicemesh": mesh, "certificate": cert})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func fingerprint(root string) string {
	sum := sha256.Sum256([]byte(root))
	return hex.EncodeToString(sum[:8])
}

// cert-manager writes a Certificate's Secret again while the Certificate exists, so deletion and pruning must remove
// the Secret only after the Certificate.
func TestCASecretsAreDeletedAfterTheirCertificates(t *testing.T) {
	ordered := orderForDeletion([]string{
		"istio-system_cacerts__Secret",
		"istio-system_istiod_apps_Deployment",
		"istio-system_mesh-istiod-ca_cert-manager.io_Certificate",
		"istio-system_mesh-root-ca__Secret",
		"istio-system_mesh-root-ca_cert-manager.io_Certificate",
		"istio-system_mesh-root-ca_cert-manager.io_Issuer",
		"_istio-sidecar-injector_admissionregistration.k8s.io_MutatingWebhookConfiguration",
	}, nil)
	lastCertificate, firstSecret := -1, len(ordered)
	for i, e := range ordered {
		switch {
		case strings.HasSuffix(e, "_Certificate"):
			lastCertificate = max(lastCertificate, i)
		case strings.HasSuffix(e, "__Secret"):
			firstSecret = min(firstSecret, i)
		}
	}
	if firstSecret < lastCertificate {
		t.Errorf("a CA Secret is deleted before a Certificate that would write it again: %v", ordered)
	}
	if !strings.HasSuffix(ordered[0], "_MutatingWebhookConfiguration") {
		t.Errorf("webhooks no longer go first: %v", ordered)
	}
}
