package main

import (
	"context"
	"fmt"
	"os"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/controllers"
	"github.com/meshwright/meshwright/internal/readiness"
)

// The upgrade of the scale trial: a RevisionBased mesh moves 200 injected Deployments from 1.30 to 1.31.
const (
	rolloutNamespaces    = 20
	rolloutDeployments   = 200
	rolloutMaxConcurrent = 20
	// 200 pods, two istiods and the surge of 20 restarts fit on 6 simulated nodes of 110 pods.
	upgradeNodes = 6
	rolloutLabel = "perf.meshwright.dev/rollout"
	// upgradeTimeout bounds the upgrade and the baseline each.
	upgradeTimeout = 10 * time.Minute
)

var (
	upgradeFigure  = fmt.Sprintf("scale: RevisionBased upgrade rolling %d Deployments (maxConcurrent %d)", rolloutDeployments, rolloutMaxConcurrent)
	baselineFigure = fmt.Sprintf("scale: baseline: restart the same %d Deployments %d at a time", rolloutDeployments, rolloutMaxConcurrent)
)

// upgradeTrial times a RevisionBased upgrade 1.30 → 1.31 that restarts 200 injected Deployments, from the version
// patch until the operator reports the workload rollout done and every Deployment rolled out on the new revision; then,
// with the operator stopped, the baseline: a script that restarts the same Deployments in batches of maxConcurrent,
// each batch waited for until it is rolled out, as `kubectl rollout restart` and `kubectl rollout status` would.
//
// The pods are injected for real on this cluster (fakeistiod answers the webhooks the mesh renders): the ReplicaSet
// controller's pods in namespaces labelled istio-injection=enabled get the revision the default tag points at, so the
// restarted ones move to the new revision only once the operator moved the tags, as with Istio.
func upgradeTrial(ctx context.Context, c *cluster, manager string, f *figures) error {
	stop, err := playIstiod(ctx, c)
	if err != nil {
		return err
	}
	defer stop()
	deps, err := upgrade(ctx, c, manager, f)
	if err != nil {
		return err
	}
	// The operator is stopped: the baseline is what the restarts alone take on this cluster.
	took, err := restartInBatches(ctx, c, deps)
	if err != nil {
		return err
	}
	f.add(baselineFigure, "s", took.Seconds())
	return nil
}

// upgrade runs the operator for the RevisionBased upgrade and returns the Deployments it rolled.
func upgrade(ctx context.Context, c *cluster, manager string, f *figures) ([]client.ObjectKey, error) {
	o, err := startOperator(c, manager)
	if err != nil {
		return nil, err
	}
	defer o.stop()
	if err := o.waitReady(); err != nil {
		return nil, err
	}
	mesh := &meshv1.ServiceMesh{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: meshv1.ServiceMeshSpec{
		Version: "1.30",
		UpdateStrategy: &meshv1.UpdateStrategy{Type: meshv1.UpdateStrategyRevisionBased,
			WorkloadRollout: &meshv1.WorkloadRollout{Enabled: true, MaxConcurrent: ptr.To[int32](rolloutMaxConcurrent)}},
	}}
	if err := c.client.Create(ctx, mesh); err != nil {
		return nil, err
	}
	if err := c.waitReady(ctx, mesh.Name); err != nil {
		return nil, fmt.Errorf("%w (operator log %s)", err, o.log.Name())
	}
	if err := c.client.Get(ctx, client.ObjectKeyFromObject(mesh), mesh); err != nil {
		return nil, err
	}
	old := mesh.Status.ActiveRevision
	began := time.Now()
	deps, err := createInjectedDeployments(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := waitInUsePods(ctx, c, old, rolloutDeployments); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "scale: %d injected Deployments on revision %s rolled out in %s\n", len(deps), old, time.Since(began).Round(100*time.Millisecond))

	start := time.Now()
	patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"version":"1.31"}}`))
	if err := c.client.Patch(ctx, mesh, patch); err != nil {
		return nil, err
	}
	var firstRestart time.Duration
	deadline := start.Add(upgradeTimeout)
	for {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the upgrade did not finish within %s (operator log %s)", upgradeTimeout, o.log.Name())
		}
		if err := c.client.Get(ctx, client.ObjectKeyFromObject(mesh), mesh); err != nil {
			return nil, err
		}
		next := mesh.Status.ActiveRevision
		restarted, rolledOut, err := rolloutProgress(ctx, c, next)
		if err != nil {
			return nil, err
		}
		if firstRestart == 0 && next != old && restarted > 0 {
			firstRestart = time.Since(start)
		}
		if next != old && rolledOut == rolloutDeployments && rolloutReported(mesh) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	took := time.Since(start)
	fmt.Fprintf(os.Stderr, "scale: upgrade %s → %s: first workload restarted after %s, %d restarted by the operator, done after %s\n",
		old, mesh.Status.ActiveRevision, firstRestart.Round(100*time.Millisecond), mesh.Status.WorkloadRollout.Restarted, took.Round(100*time.Millisecond))
	f.add(upgradeFigure, "s", took.Seconds())
	f.add("scale: RevisionBased upgrade: version patch → first workload restarted", "s", firstRestart.Seconds())
	return deps, nil
}

// rolloutReported says whether the operator reports the upgrade and its workload rollout done: Ready for the current
// generation, no longer Reconciling, and no workload pending or restarting on the active revision.
func rolloutReported(m *meshv1.ServiceMesh) bool {
	ready := meta.IsStatusConditionTrue(m.Status.Conditions, meshv1.ConditionReady)
	reconciling := meta.IsStatusConditionTrue(m.Status.Conditions, meshv1.ConditionReconciling)
	ro := m.Status.WorkloadRollout
	return ready && !reconciling && m.Status.ObservedGeneration == m.Generation &&
		ro != nil && ro.Revision == m.Status.ActiveRevision && ro.Pending == 0 && len(ro.InProgress) == 0
}

// rolloutProgress counts the Deployments the operator restarted for revision, and those of them rolled out.
func rolloutProgress(ctx context.Context, c *cluster, revision string) (restarted, rolledOut int, err error) {
	list := &appsv1.DeploymentList{}
	if err := c.client.List(ctx, list, client.MatchingLabels{rolloutLabel: "true"}); err != nil {
		return 0, 0, err
	}
	for i := range list.Items {
		d := &list.Items[i]
		if d.Spec.Template.Annotations[controllers.AnnotationRestartedFor] != revision {
			continue
		}
		restarted++
		if done, _ := readiness.Deployment(d); done {
			rolledOut++
		}
	}
	return restarted, rolledOut, nil
}

// createInjectedDeployments creates the Deployments, one replica each, in namespaces whose pods the default revision
// tag injects, and waits until all are rolled out.
func createInjectedDeployments(ctx context.Context, c *cluster) ([]client.ObjectKey, error) {
	if err := inParallel(rolloutNamespaces, func(i int) error {
		return c.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("rollout-%02d", i),
			Labels: map[string]string{"istio-injection": "enabled"}}})
	}); err != nil {
		return nil, fmt.Errorf("creating namespaces: %w", err)
	}
	keys := make([]client.ObjectKey, rolloutDeployments)
	for i := range keys {
		keys[i] = client.ObjectKey{Namespace: fmt.Sprintf("rollout-%02d", i%rolloutNamespaces), Name: fmt.Sprintf("app-%d", i)}
	}
	if err := inParallel(len(keys), func(i int) error {
		labels := map[string]string{"app": keys[i].Name}
		return c.client.Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: keys[i].Namespace, Name: keys[i].Name, Labels: map[string]string{rolloutLabel: "true"}},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1"}}}}},
		})
	}); err != nil {
		return nil, fmt.Errorf("creating Deployments: %w", err)
	}
	deadline := time.Now().Add(upgradeTimeout)
	for {
		list := &appsv1.DeploymentList{}
		if err := c.client.List(ctx, list, client.MatchingLabels{rolloutLabel: "true"}); err != nil {
			return nil, err
		}
		done := 0
		for i := range list.Items {
			if ok, _ := readiness.Deployment(&list.Items[i]); ok {
				done++
			}
		}
		if done == len(keys) {
			return keys, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d Deployments rolled out after %s", done, len(keys), upgradeTimeout)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// restartInBatches restarts deps rolloutMaxConcurrent at a time by changing a pod-template annotation, as `kubectl
// rollout restart` does, and watches each batch until every Deployment of it is rolled out before the next starts.
func restartInBatches(ctx context.Context, c *cluster, deps []client.ObjectKey) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, upgradeTimeout)
	defer cancel()
	w, err := c.client.Watch(ctx, &appsv1.DeploymentList{}, client.MatchingLabels{rolloutLabel: "true"})
	if err != nil {
		return 0, err
	}
	defer w.Stop()
	start := time.Now()
	for first := 0; first < len(deps); first += rolloutMaxConcurrent {
		batch := deps[first:min(first+rolloutMaxConcurrent, len(deps))]
		// A Deployment counts as rolled out once its controller observed the generation the restart made.
		generations := make([]int64, len(batch))
		at := time.Now().UTC().Format(time.RFC3339Nano)
		if err := inParallel(len(batch), func(i int) error {
			d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: batch[i].Namespace, Name: batch[i].Name}}
			patch := fmt.Appendf(nil, `{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`, at)
			if err := c.client.Patch(ctx, d, client.RawPatch(types.StrategicMergePatchType, patch)); err != nil {
				return err
			}
			generations[i] = d.Generation
			return nil
		}); err != nil {
			return 0, fmt.Errorf("restarting Deployments: %w", err)
		}
		waiting := map[client.ObjectKey]int64{}
		for i, key := range batch {
			waiting[key] = generations[i]
		}
		for len(waiting) > 0 {
			ev, ok := <-w.ResultChan()
			if !ok {
				return 0, fmt.Errorf("the watch of Deployments ended with %d of a batch not rolled out: %w", len(waiting), ctx.Err())
			}
			d, isDep := ev.Object.(*appsv1.Deployment)
			if !isDep {
				continue
			}
			key := client.ObjectKeyFromObject(d)
			if gen, ok := waiting[key]; ok && d.Generation >= gen {
				if done, _ := readiness.Deployment(d); done {
					delete(waiting, key)
				}
			}
		}
	}
	took := time.Since(start)
	fmt.Fprintf(os.Stderr, "scale: baseline restarted %d Deployments %d at a time in %s\n", len(deps), rolloutMaxConcurrent, took.Round(100*time.Millisecond))
	return took, nil
}
