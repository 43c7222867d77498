//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
)

// The parts of a ClusterServiceVersion's install strategy OLM acts on.
type csvInstall struct {
	Metadata struct {
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		Install struct {
			Strategy string `json:"strategy"`
			Spec     struct {
				Deployments []struct {
					Name string                `json:"name"`
					Spec appsv1.DeploymentSpec `json:"spec"`
				} `json:"deployments"`
				ClusterPermissions []csvPermission `json:"clusterPermissions"`
				Permissions        []csvPermission `json:"permissions"`
			} `json:"spec"`
		} `json:"install"`
	} `json:"spec"`
}

type csvPermission struct {
	ServiceAccountName string              `json:"serviceAccountName"`
	Rules              []rbacv1.PolicyRule `json:"rules"`
}

// The OLM bundle installs: the e2e suite does what OLM's catalog operator does with the CSV (OLM itself cannot be
// built here): the bundle's CRD and supporting objects, a ServiceAccount, (Cluster)Roles and bindings from the CSV's
// permissions, and the Deployment of its install strategy, in a namespace of its own. The operator then runs under
// that ServiceAccount's token, and the ServiceMesh of `alm-examples` becomes Ready.
func TestBundleInstallsAsOLMWouldAndItsExampleBecomesReady(t *testing.T) {
	ctx := context.Background()
	const ns = "meshwright-olm"
	data, err := os.ReadFile(filepath.Join(repoRoot, "bundle/manifests/meshwright.clusterserviceversion.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	csv := &csvInstall{}
	if err := yaml.Unmarshal(data, csv); err != nil {
		t.Fatal(err)
	}
	if csv.Spec.Install.Strategy != "deployment" || len(csv.Spec.Install.Spec.Deployments) != 1 {
		t.Fatalf("install strategy %q with %d deployments", csv.Spec.Install.Strategy, len(csv.Spec.Install.Spec.Deployments))
	}

	// One operator at a time: the one config/default deployed steps aside and comes back afterwards.
	if err := operator.stop(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if operator, err = startOperator(ctx, defaultDeployment, "operator"); err != nil {
			t.Fatalf("restarting the config/default operator: %v", err)
		}
	})

	var created []client.Object
	create := func(o client.Object) {
		t.Helper()
		if err := k8sClient.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
		created = append(created, o)
	}
	t.Cleanup(func() {
		for i := len(created) - 1; i >= 0; i-- {
			_ = k8sClient.Delete(ctx, created[i])
		}
	})
	create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}})

	// The bundle's other manifests: the CRD (already served: the same one config/default installed) and the
	// supporting objects, placed in the install namespace as OLM does.
	manifests, err := filepath.Glob(filepath.Join(repoRoot, "bundle/manifests/*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range manifests {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := decodeYAML(raw)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, o := range objs {
			if o.GetKind() == "ClusterServiceVersion" {
				continue
			}
			if o.GetKind() != "CustomResourceDefinition" && o.GetKind() != "ClusterRole" {
				o.SetNamespace(ns)
			}
			if err := serverSideApply(ctx, []*unstructured.Unstructured{o}, "olm"); err != nil {
				t.Fatal(err)
			}
			if o.GetKind() != "CustomResourceDefinition" {
				created = append(created, o)
			}
		}
	}

	grant := func(i int, p csvPermission, cluster bool) {
		name := fmt.Sprintf("%s-olm-%d", p.ServiceAccountName, i)
		create(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: p.ServiceAccountName}})
		subject := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: p.ServiceAccountName}}
		if cluster {
			create(&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: p.Rules})
			create(&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}, Subjects: subject,
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}})
			return
		}
		create(&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Rules: p.Rules})
		create(&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Subjects: subject,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}})
	}
	for i, p := range csv.Spec.Install.Spec.ClusterPermissions {
		grant(i, p, true)
	}
	for i, p := range csv.Spec.Install.Spec.Permissions {
		grant(i, p, false)
	}
	install := csv.Spec.Install.Spec.Deployments[0]
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: install.Name}, Spec: install.Spec}
	create(dep)
	if dep, err = waitDeploymentAvailable(ctx, ns, install.Name); err != nil {
		t.Fatalf("the CSV's Deployment did not become Available under Pod Security restricted: %v", err)
	}

	olmOperator, err := startOperator(ctx, dep, "olm-operator")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := olmOperator.stop(); err != nil {
			t.Error(err)
		}
		if refused, _ := olmOperator.forbidden(); len(refused) > 0 {
			t.Errorf("the operator installed from the bundle was refused requests: %v", refused)
		}
	}()

	var examples []json.RawMessage
	if err := json.Unmarshal([]byte(csv.Metadata.Annotations["alm-examples"]), &examples); err != nil || len(examples) == 0 {
		t.Fatalf("alm-examples is not a non-empty JSON array: %v", err)
	}
	var mesh *meshv1.ServiceMesh
	for _, raw := range examples {
		m := &meshv1.ServiceMesh{}
		if err := json.Unmarshal(raw, m); err != nil {
			t.Fatal(err)
		}
		// The example without a cert-manager CA: cert-manager's controllers cannot run here.
		if m.Spec.Security == nil || m.Spec.Security.CertificateAuthority == nil {
			mesh = m
			break
		}
	}
	if mesh == nil {
		t.Fatal("alm-examples holds no ServiceMesh that runs without cert-manager")
	}
	if err := k8sClient.Create(ctx, mesh); err != nil {
		t.Fatal(err)
	}
	waitCurrent(t, mesh)
	t.Logf("the alm-examples ServiceMesh %q is Ready under the operator installed from the bundle", mesh.Name)
	deleteAndWait(t, mesh)
}
