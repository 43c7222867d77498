package testutil

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// InstallCertManagerCRDs loads cert-manager's real CRDs from the module cache (deploy/crds of the module this
// project depends on) into the API server, as installing cert-manager would.
func InstallCertManagerCRDs(t testing.TB, c client.Client) {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/cert-manager/cert-manager").Output()
	if err != nil {
		t.Fatalf("locating the cert-manager module: %v", err)
	}
	files, err := filepath.Glob(filepath.Join(strings.TrimSpace(string(out)), "deploy", "crds", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no cert-manager CRDs found (%v)", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(data, crd); err != nil || crd.Name == "" {
			continue // README.md and the like
		}
		if err := c.Create(context.Background(), crd); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("installing %s: %v", crd.Name, err)
		}
	}
}

// SimulateIssuance plays cert-manager: it writes the Certificate's Secret (with the labels and annotations of its
// secretTemplate), its Ready condition and notAfter the way cert-manager would. It is a simulation, not cert-manager
// (whose controllers cannot be built here).
func SimulateIssuance(t testing.TB, c client.Client, namespace, certName, secretName string, notAfter time.Time) {
	t.Helper()
	SimulateIssuanceWithRoot(t, c, namespace, certName, secretName, notAfter, "simulated root")
}

// SimulateIssuanceWithRoot is SimulateIssuance with the given ca.crt, the root the issued chain leads to.
func SimulateIssuanceWithRoot(t testing.TB, c client.Client, namespace, certName, secretName string, notAfter time.Time, root string) {
	t.Helper()
	ctx := context.Background()
	cert := &unstructured.Unstructured{}
	cert.SetAPIVersion("cert-manager.io/v1")
	cert.SetKind("Certificate")
	Eventually(t, time.Minute, func() error {
		return c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: certName}, cert)
	})
	labels, _, _ := unstructured.NestedStringMap(cert.Object, "spec", "secretTemplate", "labels")
	annotations, _, _ := unstructured.NestedStringMap(cert.Object, "spec", "secretTemplate", "annotations")
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: secretName, Labels: labels, Annotations: annotations},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": []byte("simulated " + notAfter.String()), "tls.key": []byte("simulated"), "ca.crt": []byte(root)}}
	if err := c.Create(ctx, secret); apierrors.IsAlreadyExists(err) {
		err = c.Update(ctx, secret)
		if err != nil {
			t.Fatal(err)
		}
	} else if err != nil {
		t.Fatal(err)
	}
	_ = unstructured.SetNestedField(cert.Object, map[string]any{
		"notAfter": notAfter.UTC().Format(time.RFC3339),
		"conditions": []any{map[string]any{"type": "Ready", "status": "True", "reason": "Ready",
			"message": "simulated issuance", "lastTransitionTime": time.Now().UTC().Format(time.RFC3339)}},
	}, "status")
	if err := c.Status().Update(ctx, cert); err != nil {
		t.Fatal(err)
	}
}
