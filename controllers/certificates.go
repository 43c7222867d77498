package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/render"
	"github.com/meshwright/meshwright/internal/status"
)

// +kubebuilder:rbac:groups=cert-manager.io,resources=certificates;issuers,verbs=get;list;watch;create;update;patch;delete
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
		caExpiry.forget(s.mesh.Name)
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
	if err := r.applyObjects(ctx, s, certObjs); err != nil {
		return ctrl.Result{}, err
	}

	ready, pending := true, []string{}
	s.mesh.Status.Certificates = nil
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
			caExpiry.set(s.mesh.Name, cs.Name, cs.NotAfter.Time)
		}
		if !cs.Ready {
			ready = false
			pending = append(pending, cs.Name)
		}
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

func (c *expiryCollector) set(mesh, cert string, notAfter time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at[[2]string{mesh, cert}] = notAfter
}

func (c *expiryCollector) forget(mesh string) {
	c.mu.Lock()
	defer c.mu.Unlock()
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
