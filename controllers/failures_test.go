package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/apply"
	"github.com/meshwright/meshwright/internal/render"
	"github.com/meshwright/meshwright/internal/testutil"
)

// failureRow is one row of the failure table in the README: what a user, Flux, Argo CD or `kubectl wait` sees when
// that failure happens. Ready is False in every row.
type failureRow struct {
	name        string
	reason      string
	stalled     bool
	reconciling bool
	kstatus     status.Status
	// drive creates a mesh and brings the failure about.
	drive func(t *testing.T) *meshv1.ServiceMesh
	// then checks what the row promises beyond its conditions (what was or was not written, how it recovers).
	then func(t *testing.T, mesh *meshv1.ServiceMesh)
}

// reported accepts a mesh whose status shows exactly the row: Ready=False with the row's reason, Stalled and
// Reconciling present exactly when the row says so, and the row's kstatus.
func (row failureRow) reported(m *meshv1.ServiceMesh) error {
	if err := reconciled(m); err != nil {
		return err
	}
	ready := meta.FindStatusCondition(m.Status.Conditions, meshv1.ConditionReady)
	if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != row.reason {
		return fmt.Errorf("Ready is %+v, want False/%s", ready, row.reason)
	}
	if got := meta.IsStatusConditionTrue(m.Status.Conditions, meshv1.ConditionStalled); got != row.stalled {
		return fmt.Errorf("Stalled=True is %t, want %t (conditions %+v)", got, row.stalled, m.Status.Conditions)
	}
	if got := meta.IsStatusConditionTrue(m.Status.Conditions, meshv1.ConditionReconciling); got != row.reconciling {
		return fmt.Errorf("Reconciling=True is %t, want %t (conditions %+v)", got, row.reconciling, m.Status.Conditions)
	}
	return testutil.WantKStatus(m, row.kstatus)
}

func TestEveryFailureIsReported(t *testing.T) {
	rows := []failureRow{
		{
			name:   "an apply refused by a validating admission policy stalls with ApplyFailed and keeps what it wrote in the inventory",
			reason: meshv1.ReasonApplyFailed, stalled: true, kstatus: status.FailedStatus,
			drive: func(t *testing.T) *meshv1.ServiceMesh {
				denyIstiodByPolicy(t, "fail-vap-system")
				return createMesh(t, "fail-vap")
			},
			then: func(t *testing.T, mesh *meshv1.ServiceMesh) {
				if msg := readyMessage(mesh); !strings.Contains(msg, "meshwright-test-deny-istiod") {
					t.Errorf("Ready message %q does not name the policy that refused the apply", msg)
				}
				if istiodExists(t, mesh.Spec.Namespace) {
					t.Error("istiod exists although the policy refuses it")
				}
				if mesh.Status.Inventory == nil || len(mesh.Status.Inventory.Entries) < 10 {
					t.Errorf("inventory %v: the objects applied before the refusal are missing", mesh.Status.Inventory)
				}
			},
		},
		{
			name:   "a render failure (spec.values the chart refuses) stalls with InvalidSpec and applies nothing",
			reason: meshv1.ReasonInvalidSpec, stalled: true, kstatus: status.FailedStatus,
			drive: func(t *testing.T) *meshv1.ServiceMesh {
				return createMesh(t, "fail-render", func(m *meshv1.ServiceMesh) {
					m.Spec.Values = &apiextensionsv1.JSON{Raw: []byte(`{"defaults":{"hub":"x"}}`)}
				})
			},
			then: func(t *testing.T, mesh *meshv1.ServiceMesh) {
				if mesh.Status.Inventory != nil && len(mesh.Status.Inventory.Entries) > 0 {
					t.Errorf("inventory %v, want nothing applied", mesh.Status.Inventory.Entries)
				}
				err := k8sClient.Get(context.Background(), client.ObjectKey{Name: mesh.Spec.Namespace}, &corev1.Namespace{})
				if !apierrors.IsNotFound(err) {
					t.Errorf("namespace %s: %v, want it never created", mesh.Spec.Namespace, err)
				}
			},
		},
		{
			name:   "a CertManager mesh without cert-manager stalls with CertManagerNotInstalled and resumes by itself once it is installed",
			reason: meshv1.ReasonCertManagerMissing, stalled: true, kstatus: status.FailedStatus,
			drive: func(t *testing.T) *meshv1.ServiceMesh {
				withoutCertManager(t)
				return createMesh(t, "fail-certs", certManagerCA)
			},
			then: func(t *testing.T, mesh *meshv1.ServiceMesh) {
				if istiodExists(t, mesh.Spec.Namespace) {
					t.Error("istiod was started without its CA")
				}
				testutil.InstallCertManagerCRDs(t, k8sClient)
				waitForMesh(t, mesh, failureRow{reason: meshv1.ReasonCertificatesIssuing, reconciling: true, kstatus: status.InProgressStatus}.reported)
			},
		},
		{
			name:   "a list the API server refuses (the operator may not list StatefulSets) stalls the workload rollout, which resumes once RBAC allows it",
			reason: meshv1.ReasonWorkloadRolloutFailed, stalled: true, kstatus: status.FailedStatus,
			drive: func(t *testing.T) *meshv1.ServiceMesh {
				mesh, _ := meshWithWorkloads(t, "fail-list", time.Hour, "app-a")
				readAs(t, operatorRoleWithout(t, "statefulsets"))
				upgradeControlPlane(t, mesh)
				return mesh
			},
			then: func(t *testing.T, mesh *meshv1.ServiceMesh) {
				if msg := readyMessage(mesh); !strings.Contains(msg, "statefulsets") || !strings.Contains(msg, "forbidden") {
					t.Errorf("Ready message %q does not say which list was refused", msg)
				}
				if restartedFor(t, "fail-list-app", "app-a") != "" {
					t.Error("a workload was restarted although the rollout cannot see all workloads")
				}
				readAs(t, operatorRoleWithout(t))
				testutil.Eventually(t, waitTimeout, func() error {
					if restartedFor(t, "fail-list-app", "app-a") != "fail-list-1-31-0" {
						return fmt.Errorf("app-a not restarted yet")
					}
					return nil
				})
				waitForMesh(t, mesh, failureRow{reason: meshv1.ReasonUpgrading, reconciling: true, kstatus: status.InProgressStatus}.reported)
			},
		},
		{
			name:   "a restarted workload that does not roll out within readinessTimeout stalls the rollout with WorkloadRolloutFailed, which resumes and completes once it rolls out",
			reason: meshv1.ReasonWorkloadRolloutFailed, stalled: true, kstatus: status.FailedStatus,
			drive: func(t *testing.T) *meshv1.ServiceMesh {
				mesh, _ := meshWithWorkloads(t, "fail-rollout", 5*time.Second, "app-a", "app-b")
				upgradeControlPlane(t, mesh)
				return mesh
			},
			then: func(t *testing.T, mesh *meshv1.ServiceMesh) {
				ns, next := "fail-rollout-app", "fail-rollout-1-31-0"
				if msg := readyMessage(mesh); !strings.Contains(msg, "Deployment/"+ns+"/app-a") {
					t.Errorf("Ready message %q does not name the workload that did not roll out", msg)
				}
				if restartedFor(t, ns, "app-b") != "" {
					t.Error("the rollout went on to app-b although app-a never rolled out")
				}
				playRollout(t, ns, "app-a", next)
				testutil.Eventually(t, waitTimeout, func() error {
					if restartedFor(t, ns, "app-b") != next {
						return fmt.Errorf("app-b not restarted yet")
					}
					return nil
				})
				playRollout(t, ns, "app-b", next)
				waitForMesh(t, mesh, condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady))
			},
		},
		{
			name:   "a new revision that is not ready within readinessTimeout stalls with UpgradeFailed and the tags stay on the old one",
			reason: meshv1.ReasonUpgradeFailed, stalled: true, kstatus: status.FailedStatus,
			drive: func(t *testing.T) *meshv1.ServiceMesh {
				mesh := createMesh(t, "fail-upgrade", revisionBasedAt("1.30", 1, 2*time.Second))
				markRolledOut(t, mesh.Spec.Namespace, "istiod-fail-upgrade-1-30-4")
				waitForMesh(t, mesh, condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady))
				setVersion(t, mesh, "1.31")
				return mesh
			},
			then: func(t *testing.T, mesh *meshv1.ServiceMesh) {
				if got := tagRevision(t, mesh, "default"); got != "fail-upgrade-1-30-4" {
					t.Errorf("default tag points at %q, want the old revision", got)
				}
			},
		},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			mesh := row.drive(t)
			waitForMesh(t, mesh, row.reported)
			everyConditionExplained(t, mesh)
			inventoryCoversLiveObjects(t, mesh)
			row.then(t, mesh)
		})
	}
}

func readyMessage(m *meshv1.ServiceMesh) string {
	if c := meta.FindStatusCondition(m.Status.Conditions, meshv1.ConditionReady); c != nil {
		return c.Message
	}
	return ""
}

func everyConditionExplained(t *testing.T, m *meshv1.ServiceMesh) {
	t.Helper()
	for _, c := range m.Status.Conditions {
		if c.Reason == "" || c.Message == "" {
			t.Errorf("condition %s has reason %q and message %q; every condition needs both", c.Type, c.Reason, c.Message)
		}
	}
}

// inventoryCoversLiveObjects fails when an object carrying the mesh's owner label is missing from its inventory: a
// failure must never make Meshwright forget what it wrote.
func inventoryCoversLiveObjects(t *testing.T, mesh *meshv1.ServiceMesh) {
	t.Helper()
	var entries []string
	if mesh.Status.Inventory != nil {
		entries = mesh.Status.Inventory.Entries
	}
	for _, gvk := range slices.Concat(WatchedKinds, CRDBackedKinds) {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		err := k8sClient.List(context.Background(), list, client.MatchingLabels{render.LabelOwner: mesh.Name})
		if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
			continue // a CRD-backed kind that is not served
		}
		if err != nil {
			t.Fatalf("listing %s: %v", gvk.Kind, err)
		}
		for _, o := range list.Items {
			id := apply.ObjectID{Namespace: o.Namespace, Name: o.Name, GroupKind: gvk.GroupKind()}.String()
			if !slices.Contains(entries, id) {
				t.Errorf("%s exists with the owner label but is missing from the inventory", id)
			}
		}
	}
}

// denyIstiodByPolicy creates a ValidatingAdmissionPolicy and binding that refuse a Deployment named istiod in
// namespace (which it creates), and waits until the API server enforces them.
func denyIstiodByPolicy(t *testing.T, namespace string) {
	t.Helper()
	ctx := context.Background()
	if err := k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		t.Fatal(err)
	}
	policy := &admissionv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "meshwright-test-deny-istiod"},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionv1.Fail),
			MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionv1.RuleWithOperations{
					Operations: []admissionv1.OperationType{admissionv1.Create, admissionv1.Update},
					Rule:       admissionv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"}},
				}}}},
			Validations: []admissionv1.Validation{{Expression: "object.metadata.name != 'istiod'",
				Message: "this cluster's policy forbids istiod here"}},
		}}
	binding := &admissionv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: policy.Name},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: policy.Name,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
			MatchResources: &admissionv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{corev1.LabelMetadataName: namespace}}}}}
	for _, o := range []client.Object{policy, binding} {
		if err := k8sClient.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := k8sClient.Delete(ctx, o); err != nil && !apierrors.IsNotFound(err) {
				t.Error(err)
			}
		})
	}
	probe := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "istiod"}, Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "probe"}},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "probe"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "probe", Image: "example.com/probe:1"}}}}}}
	testutil.Eventually(t, waitTimeout, func() error {
		err := k8sClient.Create(ctx, probe.DeepCopy(), client.DryRunAll)
		if err == nil || !strings.Contains(err.Error(), policy.Name) {
			return fmt.Errorf("the policy is not enforced yet (dry run: %v)", err)
		}
		return nil
	})
}

// withoutCertManager removes cert-manager's CRDs for the rest of the test (an earlier test may have installed them)
// and puts back at the end whatever was there before.
func withoutCertManager(t *testing.T) {
	t.Helper()
	installed := deleteCertManagerCRDs(t)
	t.Cleanup(func() {
		if installed {
			testutil.InstallCertManagerCRDs(t, k8sClient)
		} else {
			deleteCertManagerCRDs(t)
		}
	})
}

// deleteCertManagerCRDs deletes cert-manager's CRDs, waits until they are gone, and says whether there were any.
func deleteCertManagerCRDs(t *testing.T) bool {
	t.Helper()
	ctx := context.Background()
	crds := &apiextensionsv1.CustomResourceDefinitionList{}
	if err := k8sClient.List(ctx, crds); err != nil {
		t.Fatal(err)
	}
	var deleted []string
	for i := range crds.Items {
		if crd := &crds.Items[i]; strings.HasSuffix(crd.Spec.Group, "cert-manager.io") {
			deleted = append(deleted, crd.Name)
			if err := k8sClient.Delete(ctx, crd); err != nil && !apierrors.IsNotFound(err) {
				t.Fatal(err)
			}
		}
	}
	waitCRDsGone(t, deleted...)
	return len(deleted) > 0
}

// meshWithWorkloads creates a RevisionBased mesh on Istio 1.30 that restarts workloads one at a time, brings its
// control plane to Ready, and adds one injected Deployment per app in namespace <name>-app, each with a pod on the
// 1.30 revision (envtest runs no ReplicaSet controller and no injector: the test plays both).
func meshWithWorkloads(t *testing.T, name string, readinessTimeout time.Duration, apps ...string) (*meshv1.ServiceMesh, string) {
	t.Helper()
	ctx := context.Background()
	mesh := createMesh(t, name, func(m *meshv1.ServiceMesh) {
		revisionBasedAt("1.30", 1, readinessTimeout)(m)
		m.Spec.UpdateStrategy.WorkloadRollout = &meshv1.WorkloadRollout{Enabled: true, MaxConcurrent: ptr.To[int32](1)}
	})
	markRolledOut(t, mesh.Spec.Namespace, "istiod-"+name+"-1-30-4")
	waitForMesh(t, mesh, condition(meshv1.ConditionReady, metav1.ConditionTrue, meshv1.ReasonReady))
	// Not labelled for injection: namespaces outlive the test in envtest, and a label would make later meshes count
	// them as users. The pods' revision labels are what the rollout follows.
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name + "-app"}}
	if err := k8sClient.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	for _, app := range apps {
		createRolledOutApp(t, ns.Name, app)
		appPod(t, ns.Name, app, app+"-old", name+"-1-30-4")
	}
	return mesh, ns.Name
}

// upgradeControlPlane moves the mesh to Istio 1.31 and plays the Deployment controller for the new istiod, so the
// tags move and the workload rollout starts.
func upgradeControlPlane(t *testing.T, mesh *meshv1.ServiceMesh) {
	t.Helper()
	setVersion(t, mesh, "1.31")
	markRolledOut(t, mesh.Spec.Namespace, "istiod-"+mesh.Name+"-1-31-0")
}

func appPod(t *testing.T, namespace, app, name, revision string) {
	t.Helper()
	pod := injectedPod(t, namespace, name, revision)
	pod.Labels["app"] = app
	if err := k8sClient.Update(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
}

// playRollout finishes the rollout of a restarted app as the ReplicaSet controller and the injector would: a pod of
// the new revision replaces the old one, and the Deployment reports itself rolled out.
func playRollout(t *testing.T, namespace, app, revision string) {
	t.Helper()
	appPod(t, namespace, app, app+"-new", revision)
	old := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: app + "-old"}}
	if err := k8sClient.Delete(context.Background(), old, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	markRolledOut(t, namespace, app)
}

// restartedFor returns the revision Meshwright restarted a Deployment for ("" if it did not).
func restartedFor(t *testing.T, namespace, name string) string {
	t.Helper()
	dep := &appsv1.Deployment{}
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, dep); err != nil {
		t.Fatal(err)
	}
	return dep.Spec.Template.Annotations[AnnotationRestartedFor]
}

// operatorRoleWithout is the operator's own ClusterRole (config/rbac/role.yaml) without the given resources, as if
// someone had trimmed it.
func operatorRoleWithout(t *testing.T, resources ...string) []rbacv1.PolicyRule {
	t.Helper()
	var rules []rbacv1.PolicyRule
	for _, rule := range operatorRole(t).Rules {
		rule.Resources = slices.DeleteFunc(slices.Clone(rule.Resources), func(r string) bool { return slices.Contains(resources, r) })
		if len(rule.Resources) > 0 || len(rule.NonResourceURLs) > 0 {
			rules = append(rules, rule)
		}
	}
	return rules
}

// readAs makes the reconciler's API reads (its APIReader) act as a user that holds exactly rules, until the test
// ends. The API server's RBAC decides, as it would for the operator's ServiceAccount.
func readAs(t *testing.T, rules []rbacv1.PolicyRule) {
	t.Helper()
	ctx := context.Background()
	const user = "meshwright-test-restricted"
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: user}}
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(role), role); apierrors.IsNotFound(err) {
		role.Rules = rules
		if err := k8sClient.Create(ctx, role); err != nil {
			t.Fatal(err)
		}
		binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: user},
			Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}}}
		if err := k8sClient.Create(ctx, binding); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			apiReader.Set(managerAPIReader)
			for _, o := range []client.Object{binding, role} {
				if err := k8sClient.Delete(ctx, o); err != nil {
					t.Error(err)
				}
			}
		})
	} else if err != nil {
		t.Fatal(err)
	} else {
		role.Rules = rules
		if err := k8sClient.Update(ctx, role); err != nil {
			t.Fatal(err)
		}
	}
	restricted := rest.CopyConfig(cfg)
	restricted.Impersonate = rest.ImpersonationConfig{UserName: user}
	c, err := client.New(restricted, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the API server's authorizer has the rules, so the test does not race the RBAC informers.
	want, _ := json.Marshal(rules)
	testutil.Eventually(t, waitTimeout, func() error {
		live := &rbacv1.ClusterRole{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(role), live); err != nil {
			return err
		}
		if got, _ := json.Marshal(live.Rules); string(got) != string(want) {
			return fmt.Errorf("role rules not stored yet")
		}
		return c.List(ctx, &meshv1.ServiceMeshList{})
	})
	apiReader.Set(c)
}
