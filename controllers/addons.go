package controllers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/apply"
	"github.com/meshwright/meshwright/internal/render"
)

// The add-ons' generated credentials and their data volumes are created once and never updated; the add-ons'
// read-only RBAC is granted to them, so the operator holds it too.
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get;create;delete
// +kubebuilder:rbac:groups="",resources=pods/log,verbs=get;list;watch
// +kubebuilder:rbac:groups=batch,resources=jobs;cronjobs,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=statefulsets,verbs=get;list;watch
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=selfsubjectaccessreviews,verbs=create
// +kubebuilder:rbac:groups=monitoring.coreos.com,resources=podmonitors;servicemonitors,verbs=get;list;watch;create;update;patch;delete
//
// Kiali with viewOnly: false edits Istio's configuration (VirtualServices, AuthorizationPolicies, Telemetry); the
// operator can grant that only by holding it. It never uses it itself.
// +kubebuilder:rbac:groups=networking.istio.io;security.istio.io;telemetry.istio.io,resources=*,verbs=create;update;patch;delete

// createOnly is an object the reconciler creates once, outside the pure render, and never rewrites: generated
// secrets (a reconcile must not change a password or a signing key) and data volumes.
type createOnly struct {
	obj client.Object
	// inventoried objects are deleted with the add-on or the mesh; the others (kept data) never are.
	inventoried bool
}

// createOnlyObjects are the create-only objects the spec asks for.
func (s *scope) createOnlyObjects(cfg render.Config) []createOnly {
	var out []createOnly
	ns, owner := s.mesh.Spec.Namespace, s.mesh.Name
	labels := func(component string) map[string]string {
		return map[string]string{render.LabelOwner: owner, render.LabelComponent: component, render.LabelManagedBy: render.ManagedBy}
	}
	if render.AddonMode(s.mesh.Spec, render.ComponentGrafana) == meshv1.AddonManaged {
		out = append(out, createOnly{inventoried: true, obj: &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: render.GrafanaAdminSecret, Namespace: ns, Labels: labels(render.ComponentGrafana)},
			StringData: map[string]string{"username": "admin", "password": randomString(24)}}})
	}
	if render.AddonMode(s.mesh.Spec, render.ComponentKiali) == meshv1.AddonManaged {
		out = append(out, createOnly{inventoried: true, obj: &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: render.KialiSigningSecret, Namespace: ns, Labels: labels(render.ComponentKiali)},
			StringData: map[string]string{"key": randomString(32)[:32]}}})
	}
	for _, name := range []string{render.ComponentPrometheus, render.ComponentTracing} {
		if pvc := render.AddonClaim(cfg, name); pvc != nil {
			out = append(out, createOnly{obj: pvc, inventoried: pvc.Labels[render.LabelKeep] != "true"})
		}
	}
	return out
}

// createOnlyInventory are the inventory entries of the create-only objects that are deleted with the mesh.
func createOnlyInventory(objs []createOnly) []string {
	var out []string
	for _, o := range objs {
		if !o.inventoried {
			continue
		}
		gvk := schema.GroupKind{Kind: "Secret"}
		if _, ok := o.obj.(*corev1.PersistentVolumeClaim); ok {
			gvk.Kind = "PersistentVolumeClaim"
		}
		out = append(out, apply.ObjectID{Namespace: o.obj.GetNamespace(), Name: o.obj.GetName(), GroupKind: gvk}.String())
	}
	return out
}

// ensureCreateOnly creates the create-only objects of one component that do not exist yet. An existing one is
// never read back into the render or updated, so its generated content survives every reconcile.
func (r *ServiceMeshReconciler) ensureCreateOnly(ctx context.Context, s *scope, component string) error {
	for _, o := range s.createOnly {
		if o.obj.GetLabels()[render.LabelComponent] != component {
			continue
		}
		probe := &metav1.PartialObjectMetadata{}
		gvk := corev1.SchemeGroupVersion.WithKind("Secret")
		if _, ok := o.obj.(*corev1.PersistentVolumeClaim); ok {
			gvk = corev1.SchemeGroupVersion.WithKind("PersistentVolumeClaim")
		}
		probe.SetGroupVersionKind(gvk)
		err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(o.obj), probe)
		if err == nil {
			continue
		}
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("reading %s %s/%s: %w", gvk.Kind, o.obj.GetNamespace(), o.obj.GetName(), err)
		}
		obj := o.obj.DeepCopyObject().(client.Object)
		if err := r.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %s %s/%s: %w", gvk.Kind, o.obj.GetNamespace(), o.obj.GetName(), err)
		}
	}
	return nil
}

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}
