package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/apply"
	"github.com/meshwright/meshwright/internal/istio"
	"github.com/meshwright/meshwright/internal/render"
	"github.com/meshwright/meshwright/internal/testutil"
)

var (
	configMapKind      = corev1.SchemeGroupVersion.WithKind("ConfigMap")
	serviceAccountKind = corev1.SchemeGroupVersion.WithKind("ServiceAccount")
)

// userObject is an object a user created before the mesh, without Meshwright's labels.
func userObject(gvk schema.GroupVersionKind, namespace, name string, annotations map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	u.SetNamespace(namespace)
	u.SetName(name)
	u.SetLabels(map[string]string{"team": "platform"})
	u.SetAnnotations(annotations)
	return u
}

// userNamespace creates a namespace as a user would, with a label of their own.
func userNamespace(t *testing.T, name string) *corev1.Namespace {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"team": "platform"}}}
	if err := k8sClient.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns
}

func createAll(t *testing.T, objs ...*unstructured.Unstructured) {
	t.Helper()
	for _, o := range objs {
		if err := k8sClient.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %s: %v", apply.IDOf(o).Describe(), err)
		}
	}
}

// unchanged fails unless the live object is exactly as the user left it: same resourceVersion, no owner label.
func unchanged(t *testing.T, o *unstructured.Unstructured) {
	t.Helper()
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(o.GroupVersionKind())
	if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(o), live); err != nil {
		t.Fatalf("%s: %v", apply.IDOf(o).Describe(), err)
	}
	if live.GetResourceVersion() != o.GetResourceVersion() {
		t.Errorf("%s was written: resourceVersion %s, created as %s", apply.IDOf(o).Describe(), live.GetResourceVersion(), o.GetResourceVersion())
	}
	if owner, ok := live.GetLabels()[render.LabelOwner]; ok {
		t.Errorf("%s was labelled as ServiceMesh %q's", apply.IDOf(o).Describe(), owner)
	}
}

// ensurePeerAuthenticationCRD makes Istio's PeerAuthentication kind served, as a mesh created earlier would have
// (labelled as Meshwright's for another mesh), so a user's PeerAuthentication can exist before this test's mesh.
func ensurePeerAuthenticationCRD(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	crd := renderedCRD(t, "peerauthentications.security.istio.io")
	err := k8sClient.Get(ctx, client.ObjectKeyFromObject(crd), &apiextensionsv1.CustomResourceDefinition{})
	if apierrors.IsNotFound(err) {
		crd.SetLabels(map[string]string{render.LabelOwner: "an-earlier-mesh", render.LabelManagedBy: render.ManagedBy})
		err = k8sClient.Create(ctx, crd)
	}
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, waitTimeout, func() error {
		_, err := k8sClient.RESTMapper().RESTMapping(render.PeerAuthenticationGVK.GroupKind(), render.PeerAuthenticationGVK.Version)
		return err
	})
}

// renderedCRD returns a CRD of the newest catalog version as Istio's base chart renders it, without Meshwright's
// labels: what a user installing Istio's CRDs with Helm would have.
func renderedCRD(t *testing.T, name string) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	v, err := istio.DefaultCatalog.Resolve("", clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	objs, err := render.Render(render.Config{MeshName: "m", Namespace: "istio-system", Hub: "h", Version: v})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" && o.GetName() == name {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, crd); err != nil {
				t.Fatal(err)
			}
			crd.Labels, crd.Annotations = nil, nil
			return crd
		}
	}
	t.Fatalf("the base chart renders no CRD %s", name)
	return nil
}

// waitForEvent returns the note of an event with reason on the mesh.
func waitForEvent(t *testing.T, mesh *meshv1.ServiceMesh, reason string) string {
	t.Helper()
	var note string
	testutil.Eventually(t, waitTimeout, func() error {
		events := &eventsv1.EventList{}
		if err := k8sClient.List(context.Background(), events); err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Regarding.Kind == "ServiceMesh" && e.Regarding.Name == mesh.Name && e.Reason == reason {
				note = e.Note
				return nil
			}
		}
		return fmt.Errorf("no %s event for ServiceMesh %s", reason, mesh.Name)
	})
	return note
}

// stalledOnConflict waits for Stalled=True, reason Conflict, and returns its message.
func stalledOnConflict(t *testing.T, mesh *meshv1.ServiceMesh) string {
	t.Helper()
	waitForMesh(t, mesh, condition(meshv1.ConditionStalled, metav1.ConditionTrue, meshv1.ReasonConflict))
	if err := testutil.WantKStatus(mesh, status.FailedStatus); err != nil {
		t.Error(err)
	}
	return meta.FindStatusCondition(mesh.Status.Conditions, meshv1.ConditionStalled).Message
}

func TestObjectsMeshwrightDidNotCreateAreAConflict(t *testing.T) {
	cases := []struct {
		name  string
		user  func(ns string) []*unstructured.Unstructured
		setup func(t *testing.T)
		mesh  func(*meshv1.ServiceMesh)
	}{
		{"a user's ConfigMap istio and ServiceAccount istiod are both named", func(ns string) []*unstructured.Unstructured {
			return []*unstructured.Unstructured{
				userObject(configMapKind, ns, "istio", nil),
				userObject(serviceAccountKind, ns, "istiod", nil),
			}
		}, nil, nil},
		{"a user's PeerAuthentication default is named", func(ns string) []*unstructured.Unstructured {
			pa := userObject(render.PeerAuthenticationGVK, ns, "default", nil)
			pa.Object["spec"] = map[string]any{"mtls": map[string]any{"mode": "PERMISSIVE"}}
			return []*unstructured.Unstructured{pa}
		}, ensurePeerAuthenticationCRD, nil},
		{"a ConfigMap annotated for adoption by another mesh is named", func(ns string) []*unstructured.Unstructured {
			return []*unstructured.Unstructured{userObject(configMapKind, ns, "istio", map[string]string{meshv1.AnnotationAdopt: "another-mesh"})}
		}, nil, nil},
		{"a user's Secret cacerts, which cert-manager would overwrite, is named", func(ns string) []*unstructured.Unstructured {
			secret := userObject(corev1.SchemeGroupVersion.WithKind("Secret"), ns, render.CACertsSecret, nil)
			secret.Object["stringData"] = map[string]any{"ca.crt": "the user's own root"}
			return []*unstructured.Unstructured{secret}
		}, func(t *testing.T) { testutil.InstallCertManagerCRDs(t, k8sClient) }, certManagerCA},
	}
	for i, tc := range cases {
		t.Run(tc.name+", nothing is written, and removing them lets the mesh proceed by itself", func(t *testing.T) {
			ctx := context.Background()
			if tc.setup != nil {
				tc.setup(t)
			}
			name := fmt.Sprintf("conflict-%d", i)
			userNamespace(t, name+"-system")
			objs := tc.user(name + "-system")
			createAll(t, objs...)
			var mutate []func(*meshv1.ServiceMesh)
			if tc.mesh != nil {
				mutate = append(mutate, tc.mesh)
			}
			mesh := createMesh(t, name, mutate...)

			msg := stalledOnConflict(t, mesh)
			for _, o := range objs {
				if want := apply.IDOf(o).Describe(); !strings.Contains(msg, want) {
					t.Errorf("Stalled message does not name %s: %s", want, msg)
				}
			}
			if want := meshv1.AnnotationAdopt + "=" + mesh.Name; !strings.Contains(msg, want) {
				t.Errorf("Stalled message does not explain adoption (%s): %s", want, msg)
			}
			if istiodExists(t, mesh.Spec.Namespace) {
				t.Error("istiod was created although the mesh is in conflict")
			}
			if inv := mesh.Status.Inventory; inv != nil && len(inv.Entries) > 0 {
				t.Errorf("inventory lists %d objects although nothing may be written", len(inv.Entries))
			}
			for _, o := range objs {
				unchanged(t, o)
			}

			for _, o := range objs {
				if err := k8sClient.Delete(ctx, o); err != nil {
					t.Fatal(err)
				}
			}
			// The mesh now takes the names over as its own.
			waitForMesh(t, mesh, func(m *meshv1.ServiceMesh) error {
				if c := meta.FindStatusCondition(m.Status.Conditions, meshv1.ConditionStalled); c != nil {
					return fmt.Errorf("still stalled: %s", c.Message)
				}
				if m.Status.Inventory == nil || !slices.Contains(m.Status.Inventory.Entries, apply.IDOf(objs[0]).String()) {
					return fmt.Errorf("the inventory does not list %s yet", apply.IDOf(objs[0]).Describe())
				}
				return nil
			})
		})
	}
}

func TestAnAdoptedObjectBecomesMeshwrightsAndIsDeletedWithTheMesh(t *testing.T) {
	ctx := context.Background()
	const name = "adopt"
	userNamespace(t, name+"-system")
	cm := userObject(configMapKind, name+"-system", "istio", map[string]string{meshv1.AnnotationAdopt: name})
	createAll(t, cm)
	mesh := installReady(t, name)

	live := &corev1.ConfigMap{}
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(cm), live); err != nil {
		t.Fatal(err)
	}
	if live.Labels[render.LabelOwner] != mesh.Name || live.Data["mesh"] == "" {
		t.Errorf("the adopted ConfigMap was not applied: labels %v, data keys %d", live.Labels, len(live.Data))
	}
	if !slices.Contains(mesh.Status.Inventory.Entries, apply.IDOf(cm).String()) {
		t.Errorf("inventory does not list the adopted %s", apply.IDOf(cm).Describe())
	}
	if note := waitForEvent(t, mesh, "Adopted"); !strings.Contains(note, apply.IDOf(cm).Describe()) {
		t.Errorf("the Adopted event does not name %s: %s", apply.IDOf(cm).Describe(), note)
	}

	deleteMesh(t, mesh)
	err := k8sClient.Get(ctx, client.ObjectKeyFromObject(cm), &corev1.ConfigMap{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("the adopted ConfigMap survived the deletion of its mesh: %v", err)
	}
}

// An object labelled for a ServiceMesh that no longer exists was created by Meshwright (for a mesh deleted before
// its inventory covered the object): the next mesh takes it over, and says so.
func TestObjectsLeftByADeletedMeshAreTakenOver(t *testing.T) {
	ctx := context.Background()
	const name = "orphans"
	userNamespace(t, name+"-system")
	orphan := userObject(configMapKind, name+"-system", "istio", nil)
	orphan.SetLabels(map[string]string{render.LabelOwner: "a-deleted-mesh", render.LabelManagedBy: render.ManagedBy})
	createAll(t, orphan)
	mesh := installReady(t, name)

	live := &corev1.ConfigMap{}
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(orphan), live); err != nil {
		t.Fatal(err)
	}
	if live.Labels[render.LabelOwner] != mesh.Name {
		t.Errorf("the orphan is still labelled %v", live.Labels)
	}
	if note := waitForEvent(t, mesh, "OrphansTakenOver"); !strings.Contains(note, apply.IDOf(orphan).Describe()) {
		t.Errorf("the OrphansTakenOver event does not name %s: %s", apply.IDOf(orphan).Describe(), note)
	}
}

func TestAnExistingNamespaceIsUsedAsItIs(t *testing.T) {
	ctx := context.Background()
	const name = "existing-ns"
	ns := userNamespace(t, name+"-system")
	userCM := userObject(configMapKind, ns.Name, "user-settings", nil)
	createAll(t, userCM)
	mesh := installReady(t, name)

	live := &corev1.Namespace{}
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(ns), live); err != nil {
		t.Fatal(err)
	}
	if live.ResourceVersion != ns.ResourceVersion || live.Labels[render.LabelOwner] != "" {
		t.Errorf("the user's namespace was written: labels %v", live.Labels)
	}
	for _, e := range mesh.Status.Inventory.Entries {
		if id, _ := apply.ParseID(e); id.GroupKind.Kind == "Namespace" {
			t.Errorf("inventory lists the user's namespace: %s", e)
		}
	}

	deleteMesh(t, mesh)
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(ns), live); err != nil || live.DeletionTimestamp != nil {
		t.Errorf("the user's namespace did not survive the mesh: %v", err)
	}
	unchanged(t, userCM)
}

func TestDeletingAMeshInConflictLeavesTheUsersObjectsAlone(t *testing.T) {
	const name = "conflict-delete"
	userNamespace(t, name+"-system")
	cm := userObject(configMapKind, name+"-system", "istio", nil)
	createAll(t, cm)
	mesh := createMesh(t, name)
	stalledOnConflict(t, mesh)

	deleteMesh(t, mesh)
	unchanged(t, cm)
}

func TestAPreExistingIstioCRDIsUpdatedAndNeverDeleted(t *testing.T) {
	ctx := context.Background()
	const crdName = "wasmplugins.extensions.istio.io"
	preExisting := installedByAUser(t, crdName)

	mesh := installReady(t, "crd-pre-existing", func(m *meshv1.ServiceMesh) { m.Spec.CRDDeletionPolicy = meshv1.CRDDeletionPolicyDelete })
	live := &apiextensionsv1.CustomResourceDefinition{}
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(preExisting), live); err != nil {
		t.Fatal(err)
	}
	if live.Labels[render.LabelOwner] != mesh.Name || live.Annotations[apply.AnnotationPreExisting] != "true" {
		t.Errorf("the pre-existing CRD is not marked: labels %v, annotations %v", live.Labels, live.Annotations)
	}
	if !slices.Contains(live.Spec.Names.Categories, "istio-io") {
		t.Errorf("the pre-existing CRD was not updated to the version's schema: categories %v", live.Spec.Names.Categories)
	}
	if note := waitForEvent(t, mesh, "PreExistingCRDsUpdated"); !strings.Contains(note, crdName) {
		t.Errorf("the PreExistingCRDsUpdated event does not name %s: %s", crdName, note)
	}
	var others []string
	for _, e := range mesh.Status.Inventory.Entries {
		if id, _ := apply.ParseID(e); id.GroupKind.Kind == "CustomResourceDefinition" && id.Name != crdName {
			others = append(others, id.Name)
		}
	}

	deleteMesh(t, mesh)
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(preExisting), live); err != nil || live.DeletionTimestamp != nil {
		t.Errorf("the pre-existing CRD was deleted with crdDeletionPolicy Delete: %v", err)
	}
	waitCRDsGone(t, others...) // created by the mesh: deleted under crdDeletionPolicy Delete
}

// installedByAUser makes the CRD name look installed by a user before Meshwright: present, without Meshwright's
// labels or annotations, and with a field that differs from the chart (no categories). It is deleted when the test ends,
// so later meshes create it again as their own.
func installedByAUser(t *testing.T, name string) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	ctx := context.Background()
	crd := &apiextensionsv1.CustomResourceDefinition{}
	err := k8sClient.Get(ctx, client.ObjectKey{Name: name}, crd)
	switch {
	case apierrors.IsNotFound(err):
		crd = renderedCRD(t, name)
		crd.Spec.Names.Categories = nil
		err = k8sClient.Create(ctx, crd)
	case err == nil:
		crd.Labels, crd.Annotations, crd.Spec.Names.Categories = nil, nil, nil
		err = k8sClient.Update(ctx, crd)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := k8sClient.Delete(ctx, crd); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		waitCRDsGone(t, name)
	})
	return crd
}

// countingReader counts the reads that reach the API server.
type countingReader struct {
	client.Reader
	gets, lists int
}

func (c *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.gets++
	return c.Reader.Get(ctx, key, obj, opts...)
}

func (c *countingReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	c.lists++
	return c.Reader.List(ctx, list, opts...)
}

func TestTheOwnershipCheckAsksTheAPIServerOnlyAboutObjectsMissingFromTheCache(t *testing.T) {
	mesh := installReady(t, "ownership-reads")
	v, err := istio.DefaultCatalog.Resolve(mesh.Spec.Version, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	objs, err := render.Render(render.Config{MeshName: mesh.Name, Namespace: mesh.Spec.Namespace, Hub: istio.DefaultCatalog.Hub,
		Version: v, Spec: mesh.Spec})
	if err != nil {
		t.Fatal(err)
	}
	reads := &countingReader{Reader: k8sClient}
	a := &apply.Applier{Reader: reconciler.Client, Writer: reconciler.Client, Uncached: reads, OwnerLabel: render.LabelOwner, Owner: mesh.Name}

	// Once the caches hold every object (an informer whose CRD an earlier test deleted and recreated catches up
	// within seconds), checking costs nothing.
	t.Run("a steady state costs no request", func(t *testing.T) {
		testutil.Eventually(t, waitTimeout, func() error {
			reads.gets = 0
			claims, err := a.Check(context.Background(), objs)
			if err != nil {
				return err
			}
			if reads.gets != 0 || len(claims) != 0 {
				return fmt.Errorf("checking %d labelled objects cost %d GETs (claims %v), want 0", len(objs), reads.gets, claims)
			}
			return nil
		})
	})

	t.Run("an object missing from the cache costs one request", func(t *testing.T) {
		reads.gets = 0
		extra := userObject(configMapKind, mesh.Spec.Namespace, "not-rendered", nil)
		claims, err := a.Check(context.Background(), append(slices.Clone(objs), extra))
		if err != nil {
			t.Fatal(err)
		}
		if reads.gets != 1 || claims[apply.IDOf(extra)] != apply.ClaimCreate {
			t.Errorf("%d GETs, claims %v; want 1 GET and the absent object claimed for creation", reads.gets, claims)
		}
	})
}
