//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/testutil"
)

const readyTimeout = 3 * time.Minute

func applySample(t testing.TB, file string) *meshv1.ServiceMesh {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "config/samples", file))
	if err != nil {
		t.Fatal(err)
	}
	mesh := &meshv1.ServiceMesh{}
	if err := yaml.UnmarshalStrict(data, mesh); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Create(context.Background(), mesh); err != nil {
		t.Fatal(err)
	}
	return mesh
}

// waitCurrent waits until kstatus says Current, as Flux and `kubectl wait` would.
func waitCurrent(t testing.TB, mesh *meshv1.ServiceMesh) {
	t.Helper()
	testutil.Eventually(t, readyTimeout, func() error {
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(mesh), mesh); err != nil {
			return err
		}
		return testutil.WantKStatus(mesh, status.CurrentStatus)
	})
}

func deleteAndWait(t testing.TB, mesh *meshv1.ServiceMesh) {
	t.Helper()
	ctx := context.Background()
	if err := k8sClient.Delete(ctx, mesh); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	testutil.Eventually(t, readyTimeout, func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(mesh), &meshv1.ServiceMesh{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("ServiceMesh %s still present (%v)", mesh.Name, err)
		}
		return nil
	})
}

func istiod(t testing.TB, mesh *meshv1.ServiceMesh) *appsv1.Deployment {
	t.Helper()
	dep := &appsv1.Deployment{}
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: mesh.Spec.Namespace, Name: "istiod"}, dep); err != nil {
		t.Fatal(err)
	}
	return dep
}

func available(dep *appsv1.Deployment) bool {
	for _, c := range dep.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func TestSampleMeshBecomesReadyAndRollsOutAReplicaChange(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	mesh := applySample(t, "mesh_v1alpha1_servicemesh_minimal.yaml")
	t.Cleanup(func() { deleteAndWait(t, mesh) })

	waitCurrent(t, mesh)
	t.Logf("sample ServiceMesh Current after %s", time.Since(start).Round(time.Millisecond))
	if c := meta.FindStatusCondition(mesh.Status.Conditions, meshv1.ConditionReady); c == nil || c.Status != "True" {
		t.Fatalf("kstatus Current but Ready is %+v", c)
	}
	dep := istiod(t, mesh)
	if !available(dep) || dep.Status.AvailableReplicas < 1 {
		t.Fatalf("istiod Deployment not available: %+v", dep.Status)
	}
	// The operator (the image's binary, with the environment config/manager ships) hands back what only its start-up
	// and its first install used (internal/memtrim): its executable's read-only mappings are found and released.
	// The replica change below is then reconciled by the operator running on the pages it faults back in.
	testutil.Eventually(t, 30*time.Second, func() error {
		entry, err := operator.logEntry("Released the memory only start-up used")
		if err != nil {
			return err
		}
		if entry == nil {
			return errors.New("no release of start-up memory logged yet")
		}
		if bytes, _ := entry["executableMappingsBytes"].(float64); bytes < 1<<20 {
			return fmt.Errorf("the operator released %v bytes of executable mappings, want at least 1 MiB: %v", entry["executableMappingsBytes"], entry)
		}
		return nil
	})
	pods := &corev1.PodList{}
	if err := k8sClient.List(ctx, pods, client.InNamespace(mesh.Spec.Namespace), client.MatchingLabels{"app": "istiod"}); err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) == 0 || pods.Items[0].Spec.NodeName == "" || pods.Items[0].Status.Phase != corev1.PodRunning {
		t.Fatalf("istiod pods not scheduled and running on a kwok node: %d pods", len(pods.Items))
	}

	start = time.Now()
	patch := client.MergeFrom(mesh.DeepCopy())
	mesh.Spec.ControlPlane = &meshv1.ControlPlane{Replicas: ptr.To[int32](2)}
	if err := k8sClient.Patch(ctx, mesh, patch); err != nil {
		t.Fatal(err)
	}
	sawProgress := false
	testutil.Eventually(t, readyTimeout, func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(mesh), mesh); err != nil {
			return err
		}
		if res, err := testutil.KStatus(mesh); err == nil && res.Status == status.InProgressStatus {
			sawProgress = true
		}
		if err := testutil.WantKStatus(mesh, status.CurrentStatus); err != nil {
			return err
		}
		if dep := istiod(t, mesh); dep.Status.AvailableReplicas != 2 || !available(dep) {
			return fmt.Errorf("istiod has %d available replicas, want 2", dep.Status.AvailableReplicas)
		}
		return nil
	})
	t.Logf("replica change rolled out and Current again after %s (InProgress observed: %v)", time.Since(start).Round(time.Millisecond), sawProgress)
	if mesh.Status.ObservedGeneration != mesh.Generation {
		t.Errorf("observedGeneration %d, generation %d", mesh.Status.ObservedGeneration, mesh.Generation)
	}
}
