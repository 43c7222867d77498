//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/controllers"
	"github.com/meshwright/meshwright/internal/testutil"
)

func patchVersion(t *testing.T, mesh *meshv1.ServiceMesh, version string) {
	t.Helper()
	patch := client.MergeFrom(mesh.DeepCopy())
	mesh.Spec.Version = version
	if err := k8sClient.Patch(context.Background(), mesh, patch); err != nil {
		t.Fatal(err)
	}
}

func TestInPlaceUpgradeFrom130To131(t *testing.T) {
	ctx := context.Background()
	mesh := &meshv1.ServiceMesh{ObjectMeta: metav1.ObjectMeta{Name: "inplace"}, Spec: meshv1.ServiceMeshSpec{Version: "1.30"}}
	if err := k8sClient.Create(ctx, mesh); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteAndWait(t, mesh) })
	waitCurrent(t, mesh)

	start := time.Now()
	patchVersion(t, mesh, "1.31")
	testutil.Eventually(t, readyTimeout, func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(mesh), mesh); err != nil {
			return err
		}
		if err := testutil.WantKStatus(mesh, status.CurrentStatus); err != nil {
			return err
		}
		if img := istiod(t, mesh).Spec.Template.Spec.Containers[0].Image; img != "docker.io/istio/pilot:1.31.0" {
			return fmt.Errorf("istiod image %s", img)
		}
		return nil
	})
	t.Logf("InPlace upgrade 1.30.4 -> 1.31.0 Current after %s", time.Since(start).Round(time.Millisecond))
	if mesh.Status.Version != "1.31.0" || mesh.Status.ActiveRevision != "default" {
		t.Errorf("status version %s revision %s", mesh.Status.Version, mesh.Status.ActiveRevision)
	}
}

// TestRevisionBasedUpgradeMovesWorkloads upgrades 1.30 to 1.31 with revisions, on a cluster where pods are really
// scheduled and rolled out. Nothing runs Istio's injector here (kwok runs no containers), so the test simulates it:
// every new app pod is labelled istio.io/rev=<the revision the default tag points at>, as the injector labels the
// pods it injects. The pods opt out of the real injection webhooks (sidecar.istio.io/inject=false), which would
// otherwise call an istiod that does not serve.
func TestRevisionBasedUpgradeMovesWorkloads(t *testing.T) {
	ctx := context.Background()
	const maxConcurrent = 2
	mesh := &meshv1.ServiceMesh{ObjectMeta: metav1.ObjectMeta{Name: "rev"}, Spec: meshv1.ServiceMeshSpec{
		Version: "1.30",
		UpdateStrategy: &meshv1.UpdateStrategy{Type: meshv1.UpdateStrategyRevisionBased,
			InactiveRevisionDeletionGracePeriodSeconds: ptr.To[int64](3),
			WorkloadRollout: &meshv1.WorkloadRollout{Enabled: true, MaxConcurrent: ptr.To[int32](maxConcurrent)}},
	}}
	if err := k8sClient.Create(ctx, mesh); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteAndWait(t, mesh) })
	waitCurrent(t, mesh)
	old, next := "rev-1-30-4", "rev-1-31-0"

	var apps []string
	for _, key := range injectedApps(t, "apps", 5) {
		apps = append(apps, key.Name)
	}
	testutil.Eventually(t, readyTimeout, func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(mesh), mesh); err != nil {
			return err
		}
		if rs := mesh.Status.Revisions; len(rs) != 1 || rs[0].InUsePods != 10 || rs[0].InUseNamespaces != 1 {
			return fmt.Errorf("revisions %+v, want 10 pods and 1 namespace on %s", rs, old)
		}
		return nil
	})

	start := time.Now()
	patchVersion(t, mesh, "1.31")
	maxRolling, bothReady := 0, false
	testutil.Eventually(t, 3*readyTimeout, func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(mesh), mesh); err != nil {
			return err
		}
		if len(mesh.Status.Revisions) == 2 && mesh.Status.Revisions[0].Ready && mesh.Status.Revisions[1].Ready {
			bothReady = true
		}
		rolling := 0
		for _, name := range apps {
			dep := &appsv1.Deployment{}
			if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: "apps", Name: name}, dep); err != nil {
				return err
			}
			if dep.Spec.Template.Annotations[controllers.AnnotationRestartedFor] != next {
				continue
			}
			if dep.Status.UpdatedReplicas != 2 || dep.Status.AvailableReplicas != 2 || dep.Status.Replicas != 2 ||
				dep.Status.ObservedGeneration < dep.Generation {
				rolling++
			}
		}
		maxRolling = max(maxRolling, rolling)
		if err := testutil.WantKStatus(mesh, status.CurrentStatus); err != nil {
			return err
		}
		if len(mesh.Status.Revisions) != 1 || mesh.Status.Revisions[0].Name != next {
			return fmt.Errorf("revisions %+v, want only %s once the old one is pruned", mesh.Status.Revisions, next)
		}
		return nil
	})
	t.Logf("RevisionBased upgrade 1.30.4 -> 1.31.0 with %d workloads: Current with the old revision pruned after %s; "+
		"%d workloads restarted, at most %d rolling at once (maxConcurrent %d)",
		len(apps), time.Since(start).Round(time.Millisecond), mesh.Status.WorkloadRollout.Restarted, maxRolling, maxConcurrent)

	if !bothReady {
		t.Error("never observed both revisions ready side by side")
	}
	if maxRolling > maxConcurrent {
		t.Errorf("%d workloads rolled at once, maxConcurrent is %d", maxRolling, maxConcurrent)
	}
	if got := mesh.Status.WorkloadRollout.Restarted; got != int32(len(apps)) {
		t.Errorf("%d workloads restarted, want %d", got, len(apps))
	}
	tag := &admissionv1.MutatingWebhookConfiguration{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Name: "istio-revision-tag-default"}, tag); err != nil {
		t.Fatal(err)
	}
	if tag.Labels["istio.io/rev"] != next {
		t.Errorf("default tag points at %s, want %s", tag.Labels["istio.io/rev"], next)
	}
	testutil.Eventually(t, time.Minute, func() error {
		err := k8sClient.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "istiod-" + old}, &appsv1.Deployment{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("the old istiod was not pruned: %v", err)
		}
		return nil
	})
	if mesh.Status.Revisions[0].InUsePods != 10 {
		t.Errorf("new revision serves %d pods, want 10", mesh.Status.Revisions[0].InUsePods)
	}
}

// simulateInjector labels every new pod of namespace with the revision the "default" revision tag points at, as
// Istio's sidecar injector labels the pods it injects. It runs until the returned function is called.
func simulateInjector(t *testing.T, namespace string) (stop func()) {
	return every(50*time.Millisecond, func(ctx context.Context) {
		// Pods first, then the tag: a pod listed here was created before the tag is read, so it never gets a
		// revision older than the one the injector would have used at its admission.
		pods := &corev1.PodList{}
		if err := k8sClient.List(ctx, pods, client.InNamespace(namespace)); err != nil {
			return
		}
		tag := &admissionv1.MutatingWebhookConfiguration{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Name: "istio-revision-tag-default"}, tag); err != nil {
			return
		}
		for i := range pods.Items {
			pod := &pods.Items[i]
			if pod.Labels["istio.io/rev"] != "" || pod.DeletionTimestamp != nil {
				continue
			}
			patch := client.MergeFrom(pod.DeepCopy())
			pod.Labels["istio.io/rev"] = tag.Labels["istio.io/rev"]
			if err := k8sClient.Patch(ctx, pod, patch); err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
				t.Logf("simulated injector: %v", err)
			}
		}
	})
}
