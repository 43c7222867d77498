package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/source"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/apply"
	"github.com/meshwright/meshwright/internal/render"
	"github.com/meshwright/meshwright/internal/status"
)

// +kubebuilder:rbac:groups=cert-manager.io,resources=certificates;issuers,verbs=get;list;watch;create;update;patch;delete
// The CA Secrets cert-manager writes: read for the root istiod loads, deleted with the mesh (never written).
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=security.istio.io,resources=peerauthentications,verbs=get;list;watch;create;update;patch;delete

// certManagerCRD is the CRD whose presence means cert-manager is installed.
const certManagerCRD = "certificates.cert-manager.io"

var certificateGVK = schema.GroupVersionKind{Group: "cert-manager.io", Version: "v1", Kind: "Certificate"}

// issueCertificates runs before anything else is applied when the mesh uses a cert-manager CA: istiod must not start
// without its plugged-in CA (it would fall back to a self-signed root and sign workloads with the wrong identity
// chain). It applies the cert-manager objects alone and waits until cert-manager reports the certificates Ready.
// With the Istiod CA it only clears what a previous cert-manager CA reported.
func (r *ServiceMeshReconciler) issueCertificates(ctx context.Context, s *scope) (ctrl.Result, error) {
	if !render.UsesCertManager(s.mesh.Spec) {
		meta.RemoveStatusCondition(&s.mesh.Status.Conditions, meshv1.ConditionCertificatesReady)
		s.mesh.Status.Certificates = nil
		// The expiry stays exported while a Certificate the inventory lists may still exist (it is pruned later in
		// this reconcile, and its deletion triggers the next one).
		if !inventoryHasCertificates(s.mesh) {
			caExpiry.forget(s.mesh.Name)
		}
		return ctrl.Result{}, nil
	}
	// The CRD itself decides, not only the REST mapper: the mapper keeps a kind it once served after cert-manager is
	// uninstalled.
	crdExists := r.certManagerCRDExists(ctx)
	if _, err := r.RESTMapper().RESTMapping(certificateGVK.GroupKind(), certificateGVK.Version); !crdExists || meta.IsNoMatchError(err) {
		msg := "spec.security.certificateAuthority.type is CertManager, but cert-manager is not installed (no CRD " +
			certManagerCRD + "). Install cert-manager (https://cert-manager.io/docs/installation/); Meshwright continues by itself once its CRDs exist."
		status.SetComponent(s.mesh, meshv1.ConditionCertificatesReady, false, meshv1.ReasonCertManagerMissing, msg)
		if crdExists {
			// Installed a moment ago: the API serves the kind shortly after its CRD appears.
			s.outcome = status.Outcome{Reason: meshv1.ReasonProgressing, Message: "Waiting for cert-manager's CRDs to be served", Reconciling: true}
			return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
		}
		// Stalled, since only the user can install cert-manager, but not terminal: the CRD watch wakes us.
		s.outcome = status.Outcome{Reason: meshv1.ReasonCertManagerMissing, Message: msg, Stalled: true}
		return ctrl.Result{RequeueAfter: 5 * time.Minute}, nil
	} else if err != nil {
		return ctrl.Result{}, err
	}
	r.ensureWatches(ctx, certificateGVK.Group)

	var certObjs []*unstructured.Unstructured
	for _, o := range s.objects {
		if o.GetLabels()[render.LabelComponent] == render.ComponentCertificates || o.GetKind() == "Namespace" {
			certObjs = append(certObjs, o)
		}
	}
	if res, err := r.applyObjects(ctx, s, certObjs); err != nil || !res.IsZero() {
		return res, err
	}
	// The Secrets cert-manager writes for these Certificates are inventoried (never applied), so that deletion and
	// pruning remove them after their Certificates.
	s.mesh.Status.Inventory.Entries = union(s.mesh.Status.Inventory.Entries, apply.Inventory(render.CASecrets(certObjs)))

	ready, pending := true, []string{}
	s.mesh.Status.Certificates = nil
	expiries := map[string]time.Time{}
	for _, o := range certObjs {
		if o.GetKind() != certificateGVK.Kind {
			continue
		}
		cs, err := r.certificateStatus(ctx, o)
		if err != nil {
			return ctrl.Result{}, err
		}
		s.mesh.Status.Certificates = append(s.mesh.Status.Certificates, cs)
		if cs.NotAfter != nil {
			expiries[cs.Name] = cs.NotAfter.Time
		}
		if !cs.Ready {
			ready = false
			pending = append(pending, cs.Name)
		}
	}
	caExpiry.replace(s.mesh.Name, expiries)
	if ready && s.caRoot == "" {
		// Issued, but the Secret (or its labels, which cert-manager copies from secretTemplate) has not reached the
		// cache yet: istiod must not start before its pod template names the root it will load.
		ready, pending = false, append(pending, "ca.crt in Secret "+render.CACertsSecret)
	}
	if !ready {
		msg := fmt.Sprintf("Waiting for cert-manager to issue %s; istiod starts once its CA exists", strings.Join(pending, ", "))
		status.SetComponent(s.mesh, meshv1.ConditionCertificatesReady, false, meshv1.ReasonCertificatesIssuing, msg)
		s.outcome = status.Outcome{Reason: meshv1.ReasonCertificatesIssuing, Message: msg, Reconciling: true}
		return ctrl.Result{RequeueAfter: rolloutRecheck}, nil
	}
	status.SetComponent(s.mesh, meshv1.ConditionCertificatesReady, true, meshv1.ReasonReady,
		fmt.Sprintf("cert-manager issued istiod's CA (Secret %s/%s)", s.mesh.Spec.Namespace, render.CACertsSecret))
	return ctrl.Result{}, nil
}

// caRootFingerprint returns the fingerprint of ca.crt in the Secret cacerts ("" while it does not exist), read from
// the label-filtered cache, which sees the Secret through the labels of the Certificate's secretTemplate.
func (r *ServiceMeshReconciler) caRootFingerprint(ctx context.Context, mesh *meshv1.ServiceMesh) (string, error) {
	if !render.UsesCertManager(mesh.Spec) {
		return "", nil
	}
	r.ensureCASecretWatch(ctx)
	secret := &unstructured.Unstructured{}
	secret.SetGroupVersionKind(secretGVK)
	if err := r.Get(ctx, client.ObjectKey{Namespace: mesh.Spec.Namespace, Name: render.CACertsSecret}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return "", nil
		}
		return "", fmt.Errorf("reading Secret %s/%s: %w", mesh.Spec.Namespace, render.CACertsSecret, err)
	}
	encoded, _, _ := unstructured.NestedString(secret.Object, "data", "ca.crt")
	root, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil || len(root) == 0 {
		return "", nil
	}
	sum := sha256.Sum256(root)
	return hex.EncodeToString(sum[:8]), nil
}

var secretGVK = schema.GroupVersionKind{Version: "v1", Kind: "Secret"}

// ensureCASecretWatch watches Meshwright's labelled Secrets (the CA Secrets cert-manager writes), so that a new root
// in cacerts is rendered into istiod's pod template at once, not at the next unrelated reconcile.
func (r *ServiceMeshReconciler) ensureCASecretWatch(ctx context.Context) {
	r.watchMu.Lock()
	defer r.watchMu.Unlock()
	if r.watched[secretGVK] || r.controller == nil {
		return
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(secretGVK)
	if err := r.controller.Watch(source.Kind[client.Object](r.cache, u, handler.EnqueueRequestsFromMapFunc(ownerOf),
		renderedObjectChanged{})); err != nil {
		log.FromContext(ctx).Error(err, "Unable to watch", "kind", secretGVK.String())
		return
	}
	r.watched[secretGVK] = true
}

// isCASecret reports whether an inventory entry is a Secret: Meshwright renders none, so it is one cert-manager
// writes for a Certificate. It is deleted after every Certificate, or cert-manager would write it again.
func isCASecret(entry string) bool {
	id, err := apply.ParseID(entry)
	return err == nil && id.GroupKind == secretGVK.GroupKind()
}

func inventoryHasCertificates(mesh *meshv1.ServiceMesh) bool {
	if mesh.Status.Inventory == nil {
		return false
	}
	return slices.ContainsFunc(mesh.Status.Inventory.Entries, func(e string) bool {
		id, err := apply.ParseID(e)
		return err == nil && id.GroupKind == certificateGVK.GroupKind()
	})
}

func (r *ServiceMeshReconciler) certManagerCRDExists(ctx context.Context) bool {
	if r.crdCache == nil {
		return false
	}
	crd := &metav1.PartialObjectMetadata{}
	crd.SetGroupVersionKind(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))
	return r.crdCache.Get(ctx, client.ObjectKey{Name: certManagerCRD}, crd) == nil
}

func (r *ServiceMeshReconciler) certificateStatus(ctx context.Context, desired *unstructured.Unstructured) (meshv1.CertificateStatus, error) {
	cs := meshv1.CertificateStatus{Name: desired.GetName()}
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(certificateGVK)
	if err := r.Get(ctx, client.ObjectKeyFromObject(desired), live); err != nil {
		return cs, client.IgnoreNotFound(err)
	}
	conds, _, _ := unstructured.NestedSlice(live.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == "Ready" && m["status"] == "True" {
			cs.Ready = true
		}
	}
	if na, ok, _ := unstructured.NestedString(live.Object, "status", "notAfter"); ok {
		if t, err := time.Parse(time.RFC3339, na); err == nil {
			cs.NotAfter = &metav1.Time{Time: t}
		}
	}
	return cs, nil
}

// caExpiry exports meshwright_ca_certificate_expiry_seconds: seconds until each CA certificate expires, computed at
// scrape time so an alert can fire well before a root or intermediate runs out.
var caExpiry = newExpiryCollector()

type expiryCollector struct {
	mu   sync.Mutex
	desc *prometheus.Desc
	at   map[[2]string]time.Time
}

func newExpiryCollector() *expiryCollector {
	c := &expiryCollector{at: map[[2]string]time.Time{}, desc: prometheus.NewDesc("meshwright_ca_certificate_expiry_seconds",
		"Seconds until a CA certificate of a ServiceMesh expires (negative once expired).", []string{"servicemesh", "certificate"}, nil)}
	ctrlmetrics.Registry.MustRegister(c)
	return c
}

// replace makes notAfter the mesh's only certificates, so a Certificate no longer rendered stops being exported.
func (c *expiryCollector) replace(mesh string, notAfter map[string]time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgetLocked(mesh)
	for cert, t := range notAfter {
		c.at[[2]string{mesh, cert}] = t
	}
}

func (c *expiryCollector) forget(mesh string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgetLocked(mesh)
}

func (c *expiryCollector) forgetLocked(mesh string) {
	for k := range c.at {
		if k[0] == mesh {
			delete(c.at, k)
		}
	}
}

func (c *expiryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *expiryCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([][2]string, 0, len(c.at))
	for k := range c.at {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int { return strings.Compare(a[0]+"/"+a[1], b[0]+"/"+b[1]) })
	for _, k := range keys {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, time.Until(c.at[k]).Seconds(), k[0], k[1])
	}
}
