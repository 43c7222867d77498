package render

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"testing"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
)

// caPolicy is what the rendered Certificates tell cert-manager about renewal: the inputs of the simulation below.
type caPolicy struct {
	rootSubject, intermediateSubject  pkix.Name
	rootDuration, rootRenewBefore     time.Duration
	rootRotation                      cmv1.PrivateKeyRotationPolicy
	intermediateDuration, renewBefore time.Duration
}

func renderedCertificates(t *testing.T, spec meshv1.ServiceMeshSpec) map[string]*cmv1.Certificate {
	t.Helper()
	objs, err := securityObjects(Config{MeshName: "default", Namespace: "istio-system", Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*cmv1.Certificate{}
	for _, o := range objs {
		if o.GetKind() != cmv1.CertificateKind {
			continue
		}
		c := &cmv1.Certificate{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, c); err != nil {
			t.Fatal(err)
		}
		out[c.Name] = c
	}
	return out
}

func certManagerSpec() meshv1.ServiceMeshSpec {
	return meshv1.ServiceMeshSpec{Security: &meshv1.Security{CertificateAuthority: &meshv1.CertificateAuthority{Type: meshv1.CACertManager}}}
}

// renderedCAPolicy reads the renewal policy from the rendered root and intermediate Certificates.
func renderedCAPolicy(t *testing.T) caPolicy {
	t.Helper()
	certs := renderedCertificates(t, certManagerSpec())
	root, inter := certs[RootCertificateName("default")], certs[IntermediateCertificateName("default")]
	if root == nil || inter == nil {
		t.Fatalf("the render lacks the root or the intermediate Certificate: %v", certs)
	}
	if root.Spec.Duration == nil || root.Spec.PrivateKey == nil || inter.Spec.Duration == nil || inter.Spec.RenewBefore == nil {
		t.Fatalf("the root and intermediate Certificates must state their lifetime, renewal and key: %+v, %+v", root.Spec, inter.Spec)
	}
	if root.Spec.PrivateKey.Algorithm != cmv1.ECDSAKeyAlgorithm || root.Spec.PrivateKey.Size != 256 {
		t.Fatalf("the simulation issues ECDSA P-256 keys, the render asks for %+v", root.Spec.PrivateKey)
	}
	// Without renewBefore cert-manager renews when a third of the lifetime remains.
	rootRenewBefore := root.Spec.Duration.Duration / 3
	if root.Spec.RenewBefore == nil {
		t.Error("the root Certificate has no renewBefore: when it is renewed is left to cert-manager's default")
	} else {
		rootRenewBefore = root.Spec.RenewBefore.Duration
	}
	subject := func(c *cmv1.Certificate) pkix.Name {
		return pkix.Name{CommonName: c.Spec.CommonName, Organization: c.Spec.Subject.Organizations}
	}
	return caPolicy{
		rootSubject: subject(root), intermediateSubject: subject(inter),
		rootDuration: root.Spec.Duration.Duration, rootRenewBefore: rootRenewBefore,
		rootRotation:         root.Spec.PrivateKey.RotationPolicy,
		intermediateDuration: inter.Spec.Duration.Duration, renewBefore: inter.Spec.RenewBefore.Duration,
	}
}

// keyPair is an issued certificate and its key.
type keyPair struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sign issues tmpl for key the way cert-manager's self-signed issuer (parent nil) and CA issuer do: with
// x509.CreateCertificate, which derives the subject key ID of a CA from its public key and copies the parent's into
// the authority key ID.
func sign(t *testing.T, tmpl *x509.Certificate, key *ecdsa.PrivateKey, parent *keyPair) keyPair {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	parentCert, parentKey := tmpl, key
	if parent != nil {
		parentCert, parentKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{cert: cert, key: key}
}

func caTemplate(subject pkix.Name, from time.Time, lifetime time.Duration) *x509.Certificate {
	return &x509.Certificate{Subject: subject, NotBefore: from, NotAfter: from.Add(lifetime), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature}
}

// workloadCert is what istiod issues a proxy: a SPIFFE identity valid for a day, signed by its intermediate.
func workloadCert(t *testing.T, intermediate keyPair, from time.Time) keyPair {
	t.Helper()
	id, _ := url.Parse("spiffe://cluster.local/ns/shop/sa/checkout")
	return sign(t, &x509.Certificate{URIs: []*url.URL{id}, NotBefore: from, NotAfter: from.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}},
		newKey(t), &intermediate)
}

// renewal is the state around the first intermediate issued after the root was renewed: the last workload
// certificate under the old root (leaf1, chained through intermediate1) and the first under the renewed one.
type renewal struct {
	root1, root2                 *x509.Certificate
	intermediate1, intermediate2 *x509.Certificate
	leaf1, leaf2                 *x509.Certificate
	at                           time.Time
}

// simulateRootRenewal plays cert-manager over the life of the first root: the root issued at t0 and renewed
// rootRenewBefore before it expires (same key for rotationPolicy Never, a new one for Always); the intermediate issued
// at t0 and renewed every intermediateDuration-renewBefore by whichever root is current; istiod signing workload
// certificates with the newest intermediate. It fails when the first intermediate under the renewed root comes
// too late for every workload to be reissued under it before the old root expires.
func simulateRootRenewal(t *testing.T, p caPolicy) (renewal, error) {
	t.Helper()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	rootKey := newKey(t)
	root1 := sign(t, caTemplate(p.rootSubject, t0, p.rootDuration), rootKey, nil)
	renewedAt := root1.cert.NotAfter.Add(-p.rootRenewBefore)
	if !renewedAt.After(t0) {
		return renewal{}, fmt.Errorf("the root is renewed at issuance (renewBefore %s, duration %s)", p.rootRenewBefore, p.rootDuration)
	}
	if p.rootRotation != cmv1.RotationPolicyNever {
		rootKey = newKey(t)
	}
	root2 := sign(t, caTemplate(p.rootSubject, renewedAt, p.rootDuration), rootKey, nil)

	interval := p.intermediateDuration - p.renewBefore
	previous := t0
	for previous.Add(interval).Before(renewedAt) {
		previous = previous.Add(interval)
	}
	next := previous.Add(interval)
	const workloadTTL = 24 * time.Hour
	if deadline := root1.cert.NotAfter.Add(-workloadTTL); next.After(deadline) {
		return renewal{}, fmt.Errorf("the first intermediate under the renewed root is issued at %s, after %s: workloads "+
			"would still hold only the old root when it expires", next, deadline)
	}
	intermediate1 := sign(t, caTemplate(p.intermediateSubject, previous, p.intermediateDuration), newKey(t), &root1)
	intermediate2 := sign(t, caTemplate(p.intermediateSubject, next, p.intermediateDuration), newKey(t), &root2)
	return renewal{
		root1: root1.cert, root2: root2.cert, intermediate1: intermediate1.cert, intermediate2: intermediate2.cert,
		leaf1: workloadCert(t, intermediate1, next.Add(-time.Hour)).cert,
		leaf2: workloadCert(t, intermediate2, next.Add(time.Minute)).cert,
		at:    next.Add(2 * time.Minute),
	}, nil
}

// verify checks a workload certificate as a peer does: the chain it presents (leaf and intermediate) against the
// roots the verifying workload was given.
func verify(leaf, intermediate *x509.Certificate, roots []*x509.Certificate, at time.Time) error {
	pool, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	inter.AddCert(intermediate)
	_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err
}

// The roots workloads are given are ca.crt of cacerts, which istiod loads: the old root until the first intermediate
// issued under the renewed root (istiod then restarts, see AnnotationCARoot), the renewed root afterwards. Workloads
// of both kinds coexist until every workload certificate has been reissued, so each must accept both leaves.
func TestARootRenewalKeepsEveryWorkloadCertificateTrusted(t *testing.T) {
	p := renderedCAPolicy(t)
	if p.rootRotation != cmv1.RotationPolicyNever {
		t.Errorf("the root's rotationPolicy is %q: a renewed root with a new key does not verify chains issued under "+
			"the old one, and istiod hands workloads one root only", p.rootRotation)
	}
	r, err := simulateRootRenewal(t, p)
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]*x509.Certificate{"the old root": r.root1}
	after := map[string]*x509.Certificate{"the renewed root": r.root2}
	for _, roots := range []map[string]*x509.Certificate{before, after} {
		for rootName, root := range roots {
			for leafName, chain := range map[string][2]*x509.Certificate{
				"a certificate issued before the renewal": {r.leaf1, r.intermediate1},
				"a certificate issued after the renewal":  {r.leaf2, r.intermediate2},
			} {
				t.Run(fmt.Sprintf("a workload given %s trusts %s", rootName, leafName), func(t *testing.T) {
					if err := verify(chain[0], chain[1], []*x509.Certificate{root}, r.at); err != nil {
						t.Error(err)
					}
				})
			}
		}
	}
	t.Run("the renewed root is a new certificate, not the old one again", func(t *testing.T) {
		if r.root1.Equal(r.root2) || !r.root2.NotAfter.After(r.root1.NotAfter) {
			t.Errorf("root2 (%s) does not extend root1 (%s)", r.root2.NotAfter, r.root1.NotAfter)
		}
	})
}

// The simulation must catch a policy that breaks trust, or the test above proves nothing.
func TestTheRootRenewalSimulationCatchesBrokenPolicies(t *testing.T) {
	rendered := renderedCAPolicy(t)

	t.Run("a root renewed with a new key and no trust bundle leaves the old certificates untrusted", func(t *testing.T) {
		p := rendered
		p.rootRotation = cmv1.RotationPolicyAlways
		r, err := simulateRootRenewal(t, p)
		if err != nil {
			t.Fatal(err)
		}
		var unknown x509.UnknownAuthorityError
		if err := verify(r.leaf1, r.intermediate1, []*x509.Certificate{r.root2}, r.at); !errors.As(err, &unknown) {
			t.Errorf("a certificate issued under the old key verified against the renewed root alone (err %v)", err)
		}
		if err := verify(r.leaf2, r.intermediate2, []*x509.Certificate{r.root1}, r.at); !errors.As(err, &unknown) {
			t.Errorf("a certificate issued under the new key verified against the old root alone (err %v)", err)
		}
		// A bundle of both roots would have saved it; cert-manager's ca.crt never holds one.
		if err := verify(r.leaf1, r.intermediate1, []*x509.Certificate{r.root1, r.root2}, r.at); err != nil {
			t.Errorf("the control is wrong: even both roots do not verify the old certificate: %v", err)
		}
	})

	t.Run("a root renewed later than the intermediate's renewal interval before expiry expires while still in use", func(t *testing.T) {
		p := rendered
		p.rootRenewBefore = p.renewBefore / 2
		if _, err := simulateRootRenewal(t, p); err == nil {
			t.Error("a root renewed 15 days before it expires, with an intermediate renewed every 11 months, was accepted")
		}
	})
}

func TestTheCASecretsAreLabelledAndListedForTheInventory(t *testing.T) {
	for name, spec := range map[string]meshv1.ServiceMeshSpec{
		"Meshwright's own root": certManagerSpec(),
		"the user's issuer": {Security: &meshv1.Security{CertificateAuthority: &meshv1.CertificateAuthority{Type: meshv1.CACertManager,
			CertManager: &meshv1.CertManagerCA{IssuerRef: &meshv1.IssuerReference{Name: "corp-pki"}}}}},
	} {
		t.Run("with "+name+", every Certificate's Secret carries the owner labels and is listed", func(t *testing.T) {
			objs, err := securityObjects(Config{MeshName: "default", Namespace: "istio-system", Spec: spec})
			if err != nil {
				t.Fatal(err)
			}
			certs := renderedCertificates(t, spec)
			secrets := map[string]bool{}
			for _, s := range CASecrets(objs) {
				if s.GetKind() != "Secret" || s.GetAPIVersion() != "v1" || s.GetNamespace() != "istio-system" {
					t.Errorf("CASecrets returned %s %s/%s", s.GetKind(), s.GetNamespace(), s.GetName())
				}
				secrets[s.GetName()] = true
			}
			if len(secrets) != len(certs) {
				t.Errorf("CASecrets lists %v for the Certificates %v", secrets, certs)
			}
			for _, c := range certs {
				if !secrets[c.Spec.SecretName] {
					t.Errorf("the Secret %s of Certificate %s is not listed", c.Spec.SecretName, c.Name)
				}
				l := map[string]string{}
				if c.Spec.SecretTemplate != nil {
					l = c.Spec.SecretTemplate.Labels
				}
				if l[LabelOwner] != "default" || l[LabelManagedBy] != ManagedBy || l[LabelComponent] != ComponentCertificates {
					t.Errorf("Certificate %s gives its Secret the labels %v, want Meshwright's owner, managed-by and component labels", c.Name, l)
				}
			}
		})
	}
}

func TestANewCARootRestartsIstiod(t *testing.T) {
	istiodAnnotations := func(t *testing.T, cfg Config) map[string]string {
		t.Helper()
		objs, err := Render(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if o.GetKind() == "Deployment" && o.GetName() == "istiod" {
				a, _, _ := unstructured.NestedStringMap(o.Object, "spec", "template", "metadata", "annotations")
				return a
			}
		}
		t.Fatal("no istiod Deployment rendered")
		return nil
	}
	for _, tc := range []struct {
		name, root, values string
	}{
		{"before the root is known, istiod's pods carry no root fingerprint", "", ""},
		{"istiod's pods carry the fingerprint of the root they load", "0123456789abcdef", ""},
		{"the user's pod annotations do not remove the root fingerprint", "0123456789abcdef",
			`{"pilot":{"podAnnotations":{"team":"platform","mesh.meshwright.dev/ca-root":"stale"}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := scenarios(t)["cert-manager-ca-1.31"]
			cfg.CARoot = tc.root
			if tc.values != "" {
				cfg.Spec.Values = raw(t, tc.values)
			}
			got, ok := istiodAnnotations(t, cfg)[AnnotationCARoot]
			if tc.root == "" && ok {
				t.Errorf("annotation %s = %q without a root", AnnotationCARoot, got)
			}
			if tc.root != "" && got != tc.root {
				t.Errorf("annotation %s = %q, want %q", AnnotationCARoot, got, tc.root)
			}
		})
	}
}
