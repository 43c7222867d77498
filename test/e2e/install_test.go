//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
)

func startCluster(kubeconfig string) (stop func(), err error) {
	egressSocket = filepath.Join(workDir, "egress.sock")
	name := os.Getenv("MESHWRIGHT_E2E_CLUSTER") // so that two runs on one machine do not delete each other's cluster
	if name == "" {
		name = "meshwright-e2e"
	}
	clusterEnv := append(os.Environ(), "CLUSTER_NAME="+name, "KUBECONFIG_OUT="+kubeconfig, "EGRESS_SOCKET="+egressSocket)
	down := func() {
		cmd := exec.Command(filepath.Join(repoRoot, "hack/cluster.sh"), "down")
		cmd.Env, cmd.Stderr = clusterEnv, os.Stderr
		_ = cmd.Run()
	}
	down() // a cluster left by an interrupted run
	up := exec.Command(filepath.Join(repoRoot, "hack/cluster.sh"), "up")
	up.Env, up.Stdout, up.Stderr = clusterEnv, nil, os.Stderr
	if err := up.Run(); err != nil {
		return nil, fmt.Errorf("starting the kwok cluster: %w", err)
	}
	return down, nil
}

// managerFromImage extracts /manager from the linux/amd64 image of the OCI layout `make docker-build` wrote
// ($MESHWRIGHT_IMAGE_LAYOUT, as hack/test.sh sets it), building the image first when no layout is given.
func managerFromImage() (string, error) {
	layout := os.Getenv("MESHWRIGHT_IMAGE_LAYOUT")
	if layout == "" {
		layout = filepath.Join(workDir, "image")
		if err := goRun("./hack/image", "manager", "--out", layout, "--version", "0.0.0-e2e"); err != nil {
			return "", fmt.Errorf("building the image: %w", err)
		}
	}
	bin := filepath.Join(workDir, "manager")
	if err := goRun("./hack/image", "extract", "--layout", layout, "--platform", "linux/amd64", "--file", "/manager", "--to", bin); err != nil {
		return "", fmt.Errorf("extracting /manager from %s: %w", layout, err)
	}
	return bin, os.Chmod(bin, 0o755)
}

func goRun(args ...string) error {
	cmd := exec.Command("go", append([]string{"run"}, args...)...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = repoRoot, os.Stderr, os.Stderr
	return cmd.Run()
}

// kustomizeBuild renders a kustomization of the repository, as `kustomize build` does.
func kustomizeBuild(dir string) ([]*unstructured.Unstructured, error) {
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(repoRoot, dir))
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	data, err := resources.AsYaml()
	if err != nil {
		return nil, err
	}
	return decodeYAML(data)
}

func decodeYAML(data []byte) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, err
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}

// serverSideApply applies objects with the admin client, namespaces and CRDs first, as `kubectl apply --server-side`.
func serverSideApply(ctx context.Context, objs []*unstructured.Unstructured, fieldManager string) error {
	for _, first := range []bool{true, false} {
		for _, o := range objs {
			if (o.GetKind() == "Namespace" || o.GetKind() == "CustomResourceDefinition") != first {
				continue
			}
			if err := k8sClient.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()),
				client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
				return fmt.Errorf("applying %s %s: %w", o.GetKind(), o.GetName(), err)
			}
		}
	}
	return nil
}

// deployDefault is `make deploy` without the image push: config/default applied to the cluster. It returns the
// manager Deployment once it is Available.
func deployDefault(ctx context.Context) (*appsv1.Deployment, error) {
	objs, err := kustomizeBuild("config/default")
	if err != nil {
		return nil, err
	}
	if err := serverSideApply(ctx, objs, "make-deploy"); err != nil {
		return nil, err
	}
	if err := waitCRDEstablished(ctx, "servicemeshes.mesh.meshwright.dev"); err != nil {
		return nil, err
	}
	return waitDeploymentAvailable(ctx, operatorNamespace, operatorDeployment)
}

func waitCRDEstablished(ctx context.Context, name string) error {
	return poll(time.Minute, func() error {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Name: name}, crd); err != nil {
			return err
		}
		for _, c := range crd.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("CRD %s not Established", name)
	})
}

func waitDeploymentAvailable(ctx context.Context, namespace, name string) (*appsv1.Deployment, error) {
	dep := &appsv1.Deployment{}
	err := poll(2*time.Minute, func() error {
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, dep); err != nil {
			return err
		}
		if !available(dep) || dep.Status.ObservedGeneration != dep.Generation || dep.Status.UpdatedReplicas != *dep.Spec.Replicas {
			return fmt.Errorf("deployment %s/%s not available: %+v", namespace, name, dep.Status)
		}
		return nil
	})
	if err != nil {
		// A pod the API server refused (Pod Security) shows in the ReplicaSet's events, not the Deployment's.
		events, _ := clientset.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{})
		for _, e := range events.Items {
			if e.Type == corev1.EventTypeWarning {
				err = fmt.Errorf("%w; event %s: %s", err, e.Reason, e.Message)
			}
		}
	}
	return dep, err
}

// poll is testutil.Eventually for code outside a test.
func poll(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		<-tick.C
	}
}

func probe(url string) bool {
	resp, err := http.Get(url) //nolint:gosec // loopback probe address
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// metricsScraperToken creates a ServiceAccount bound to config/rbac's metrics-reader ClusterRole, as a Prometheus
// would be, and returns a token for it.
func metricsScraperToken(ctx context.Context) (string, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: "e2e-metrics-scraper"}}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-metrics-scraper"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "meshwright-metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: sa.Namespace, Name: sa.Name}},
	}
	for _, o := range []client.Object{sa, binding} {
		if err := k8sClient.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return "", err
		}
	}
	return requestToken(ctx, sa.Namespace, sa.Name)
}

// checkUndeploy runs `make undeploy`'s script twice, with the operator stopped: while a ServiceMesh exists it must
// remove the operator but keep the CRD (and so the mesh); once no mesh is left, it removes the CRD too.
func checkUndeploy(ctx context.Context) error {
	mesh := &meshv1.ServiceMesh{ObjectMeta: metav1.ObjectMeta{Name: "undeploy-check"}}
	if err := k8sClient.Create(ctx, mesh); err != nil {
		return fmt.Errorf("undeploy check: %w", err)
	}
	out, err := undeploy()
	if err != nil {
		return fmt.Errorf("undeploy with a ServiceMesh present: %w\n%s", err, out)
	}
	if !strings.Contains(out, "Kept the ServiceMesh CRD") {
		return fmt.Errorf("undeploy with a ServiceMesh present did not say it kept the CRD:\n%s", out)
	}
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(mesh), mesh); err != nil {
		return fmt.Errorf("the ServiceMesh did not survive undeploy: %w", err)
	}
	if err := poll(time.Minute, func() error {
		err := k8sClient.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: operatorDeployment}, &appsv1.Deployment{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("the manager Deployment is still there after undeploy (%v)", err)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := k8sClient.Delete(ctx, mesh); err != nil {
		return err
	}
	if out, err = undeploy(); err != nil {
		return fmt.Errorf("undeploy without a ServiceMesh: %w\n%s", err, out)
	}
	if err := poll(time.Minute, func() error {
		err := k8sClient.Get(ctx, client.ObjectKey{Name: "servicemeshes.mesh.meshwright.dev"}, &apiextensionsv1.CustomResourceDefinition{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("the CRD is still there after undeploy without meshes (%v)", err)
		}
		return nil
	}); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "e2e: make undeploy kept the CRD while a ServiceMesh existed, and removed it afterwards")
	return nil
}

func undeploy() (string, error) {
	cmd := exec.Command(filepath.Join(repoRoot, "hack/undeploy.sh"))
	cmd.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(workDir, "kubeconfig"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// `make deploy`'s Deployment runs in a namespace whose Pod Security level is "restricted", which the API server
// enforces on the pods kwok simulates; its pod has requests and limits, probes, a read-only root filesystem, the
// RuntimeDefault seccomp profile, no capabilities and a numeric non-root user, and leader election is on.
func TestDeployedManagerIsAvailableUnderRestrictedPodSecurity(t *testing.T) {
	ctx := context.Background()
	ns := &corev1.Namespace{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Name: operatorNamespace}, ns); err != nil {
		t.Fatal(err)
	}
	if got := ns.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
		t.Fatalf("namespace %s enforces Pod Security level %q, want restricted", operatorNamespace, got)
	}
	dep, err := waitDeploymentAvailable(ctx, operatorNamespace, operatorDeployment)
	if err != nil {
		t.Fatal(err)
	}
	pods := &corev1.PodList{}
	if err := k8sClient.List(ctx, pods, client.InNamespace(operatorNamespace), client.MatchingLabels(dep.Spec.Selector.MatchLabels)); err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) == 0 || pods.Items[0].Status.Phase != corev1.PodRunning {
		t.Fatalf("no running manager pod: %d pods", len(pods.Items))
	}
	pod := pods.Items[0].Spec
	c := pod.Containers[0]
	checks := map[string]bool{
		"cpu and memory requests":     !c.Resources.Requests.Cpu().IsZero() && !c.Resources.Requests.Memory().IsZero(),
		"a memory limit":              !c.Resources.Limits.Memory().IsZero(),
		"liveness and readiness":      c.LivenessProbe != nil && c.ReadinessProbe != nil,
		"a read-only root filesystem": c.SecurityContext != nil && c.SecurityContext.ReadOnlyRootFilesystem != nil && *c.SecurityContext.ReadOnlyRootFilesystem,
		"seccomp RuntimeDefault":      pod.SecurityContext != nil && pod.SecurityContext.SeccompProfile != nil && pod.SecurityContext.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault,
		"all capabilities dropped":    c.SecurityContext != nil && c.SecurityContext.Capabilities != nil && len(c.SecurityContext.Capabilities.Drop) == 1 && c.SecurityContext.Capabilities.Drop[0] == "ALL",
		"user 65532":                  pod.SecurityContext.RunAsUser != nil && *pod.SecurityContext.RunAsUser == 65532,
		"leader election":             containsArg(c.Args, "--leader-elect"),
		"the image's /manager":        len(c.Command) == 1 && c.Command[0] == "/manager",
	}
	for what, ok := range checks {
		if !ok {
			t.Errorf("the manager pod lacks %s", what)
		}
	}

	// The level is enforced, not only labelled: a privileged pod is refused in the same namespace.
	privileged := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: "privileged"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox",
			SecurityContext: &corev1.SecurityContext{Privileged: ptrTo(true)}}}},
	}
	err = k8sClient.Create(ctx, privileged, client.DryRunAll)
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "restricted") {
		t.Fatalf("a privileged pod in %s was not refused by Pod Security: %v", operatorNamespace, err)
	}

	// The operator process holds the leader election Lease in its namespace, under its own identity.
	lease := &unstructured.Unstructured{}
	lease.SetAPIVersion("coordination.k8s.io/v1")
	lease.SetKind("Lease")
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: "meshwright.mesh.meshwright.dev"}, lease); err != nil {
		t.Fatalf("no leader election Lease: %v", err)
	}
	if holder, _, _ := unstructured.NestedString(lease.Object, "spec", "holderIdentity"); holder == "" {
		t.Fatal("the leader election Lease has no holder")
	}
}

func containsArg(args []string, want string) bool {
	for _, a := range args {
		if a == want {
			return true
		}
	}
	return false
}

func ptrTo[T any](v T) *T { return &v }
