package render

import (
	"cmp"
	"fmt"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
)

// Components rendered by Meshwright's own renderers.
const (
	ComponentCertificates = "certificates"
	ComponentMeshPolicy   = "mesh-policy"
)

// PeerAuthenticationGVK is the kind of the mesh-wide mutual TLS policy.
var PeerAuthenticationGVK = schema.GroupVersionKind{Group: "security.istio.io", Version: "v1", Kind: "PeerAuthentication"}

// CACertsSecret is the Secret istiod loads its plugged-in CA from. cert-manager writes it in kubernetes.io/tls form
// (tls.crt, tls.key, ca.crt), which istiod accepts as it is and watches for rotation.
const CACertsSecret = "cacerts"

// Defaults of the cert-manager CA. The CRD's CEL rule comparing intermediateDuration with rootDuration repeats the
// first two.
var (
	DefaultRootDuration         = 87600 * time.Hour
	DefaultIntermediateDuration = 8760 * time.Hour
	DefaultRenewBefore          = 720 * time.Hour
)

// AnnotationCARoot on istiod's pods holds the fingerprint of the root istiod's plugged-in CA chains to (ca.crt of
// cacerts). istiod reloads a renewed intermediate by itself but refuses one that comes with a different root (unless
// ISTIO_MULTIROOT_MESH is set and one root bundle contains the other): it would keep signing with the intermediate it
// holds until that expires. A new fingerprint therefore restarts istiod, which then loads the new chain.
const AnnotationCARoot = "mesh.meshwright.dev/ca-root"

// UsesCertManager reports whether the spec asks for a cert-manager CA.
func UsesCertManager(spec meshv1.ServiceMeshSpec) bool {
	return spec.Security != nil && spec.Security.CertificateAuthority != nil &&
		spec.Security.CertificateAuthority.Type == meshv1.CACertManager
}

// MTLSMode is the resolved mesh-wide mutual TLS mode: STRICT unless the spec says otherwise.
func MTLSMode(spec meshv1.ServiceMeshSpec) string {
	if spec.Security != nil && spec.Security.MTLS != "" {
		return spec.Security.MTLS
	}
	return "STRICT"
}

// IntermediateCertificateName is the cert-manager Certificate of istiod's intermediate CA.
func IntermediateCertificateName(mesh string) string { return mesh + "-istiod-ca" }

// RootCertificateName is the cert-manager Certificate of the self-signed root Meshwright creates.
func RootCertificateName(mesh string) string { return mesh + "-root-ca" }

// CASecrets returns the Secrets cert-manager writes for the rendered Certificates among objs (spec.secretName in
// the Certificate's namespace): Meshwright does not apply them, but they exist because of it, so they are
// inventoried and deleted after their Certificates.
func CASecrets(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GroupVersionKind().Group != cmv1.SchemeGroupVersion.Group || o.GetKind() != cmv1.CertificateKind {
			continue
		}
		name, _, _ := unstructured.NestedString(o.Object, "spec", "secretName")
		if name == "" {
			continue
		}
		secret := &unstructured.Unstructured{}
		secret.SetAPIVersion("v1")
		secret.SetKind("Secret")
		secret.SetNamespace(o.GetNamespace())
		secret.SetName(name)
		out = append(out, secret)
	}
	return out
}

// securityObjects renders the mesh-wide PeerAuthentication and, for a CertManager CA, the cert-manager objects:
// a self-signed Issuer, a root CA Certificate and a CA Issuer (unless the user names an issuer), and istiod's
// intermediate CA Certificate whose Secret is "cacerts". The Certificates' secretTemplate gives their Secrets
// Meshwright's labels, so that the label-filtered caches see them and deletion finds them.
//
// The root keeps its private key when cert-manager renews it (rotationPolicy Never) and is renewed when its remaining
// lifetime equals the intermediate's lifetime. A renewed root then has the same subject and key as the old one, so
// a chain issued under either verifies against either (a signature check needs only the key), and the intermediate,
// renewed on its own schedule, moves to the new root well before the old one expires. Workloads holding the old
// root and workloads holding the new one keep trusting each other until all are reissued (security_test.go proves
// it with crypto/x509).
func securityObjects(cfg Config) ([]*unstructured.Unstructured, error) {
	peerAuth := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": PeerAuthenticationGVK.GroupVersion().String(),
		"kind":       PeerAuthenticationGVK.Kind,
		"metadata":   map[string]any{"name": "default", "namespace": cfg.Namespace},
		"spec":       map[string]any{"mtls": map[string]any{"mode": MTLSMode(cfg.Spec)}},
	}}
	label(peerAuth, cfg.MeshName, ComponentMeshPolicy)
	out := []*unstructured.Unstructured{peerAuth}
	if !UsesCertManager(cfg.Spec) {
		return out, nil
	}

	cm := cfg.Spec.Security.CertificateAuthority.CertManager
	if cm == nil {
		cm = &meshv1.CertManagerCA{}
	}
	duration := func(d *metav1.Duration, def time.Duration) *metav1.Duration {
		if d != nil {
			return d
		}
		return &metav1.Duration{Duration: def}
	}
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: cfg.Namespace} }
	caUsages := []cmv1.KeyUsage{cmv1.UsageCertSign, cmv1.UsageCRLSign, cmv1.UsageDigitalSignature}
	privateKey := func(policy cmv1.PrivateKeyRotationPolicy) *cmv1.CertificatePrivateKey {
		return &cmv1.CertificatePrivateKey{Algorithm: cmv1.ECDSAKeyAlgorithm, Size: 256, RotationPolicy: policy}
	}
	secretTemplate := &cmv1.CertificateSecretTemplate{Labels: map[string]string{
		LabelOwner: cfg.MeshName, LabelComponent: ComponentCertificates, LabelManagedBy: ManagedBy}}
	intermediateDuration := duration(cm.IntermediateDuration, DefaultIntermediateDuration)

	var typed []runtime.Object
	issuer := cmmeta.IssuerReference{Name: cfg.MeshName + "-root-ca", Kind: cmv1.IssuerKind, Group: "cert-manager.io"}
	if ref := cm.IssuerRef; ref != nil {
		issuer = cmmeta.IssuerReference{Name: ref.Name, Kind: cmp.Or(ref.Kind, cmv1.IssuerKind), Group: cmp.Or(ref.Group, "cert-manager.io")}
	} else {
		selfSigned := cfg.MeshName + "-selfsigned"
		typed = append(typed,
			&cmv1.Issuer{ObjectMeta: meta(selfSigned), Spec: cmv1.IssuerSpec{IssuerConfig: cmv1.IssuerConfig{SelfSigned: &cmv1.SelfSignedIssuer{}}}},
			&cmv1.Certificate{ObjectMeta: meta(RootCertificateName(cfg.MeshName)), Spec: cmv1.CertificateSpec{
				IsCA: true, CommonName: fmt.Sprintf("%s root CA", cfg.MeshName),
				Subject:    &cmv1.X509Subject{Organizations: []string{"Meshwright"}},
				SecretName: RootCertificateName(cfg.MeshName), SecretTemplate: secretTemplate,
				Duration:    duration(cm.RootDuration, DefaultRootDuration),
				RenewBefore: intermediateDuration,
				PrivateKey:  privateKey(cmv1.RotationPolicyNever), Usages: caUsages,
				IssuerRef: cmmeta.IssuerReference{Name: selfSigned, Kind: cmv1.IssuerKind, Group: "cert-manager.io"},
			}},
			&cmv1.Issuer{ObjectMeta: meta(issuer.Name), Spec: cmv1.IssuerSpec{IssuerConfig: cmv1.IssuerConfig{
				CA: &cmv1.CAIssuer{SecretName: RootCertificateName(cfg.MeshName)}}}},
		)
	}
	typed = append(typed, &cmv1.Certificate{ObjectMeta: meta(IntermediateCertificateName(cfg.MeshName)), Spec: cmv1.CertificateSpec{
		IsCA: true, CommonName: fmt.Sprintf("istiod intermediate CA (%s)", cfg.MeshName),
		Subject:        &cmv1.X509Subject{Organizations: []string{"Meshwright"}},
		SecretName:     CACertsSecret,
		SecretTemplate: secretTemplate,
		Duration:       intermediateDuration,
		RenewBefore:    duration(cm.RenewBefore, DefaultRenewBefore),
		PrivateKey:     privateKey(cmv1.RotationPolicyAlways), Usages: caUsages, IssuerRef: issuer,
	}})

	for _, obj := range typed {
		content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{Object: content}
		u.SetAPIVersion(cmv1.SchemeGroupVersion.String())
		switch obj.(type) {
		case *cmv1.Issuer:
			u.SetKind(cmv1.IssuerKind)
		case *cmv1.Certificate:
			u.SetKind(cmv1.CertificateKind)
		}
		unstructured.RemoveNestedField(u.Object, "status")
		unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
		label(u, cfg.MeshName, ComponentCertificates)
		out = append(out, u)
	}
	return out, nil
}
