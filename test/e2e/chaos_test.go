//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/controllers"
	"github.com/meshwright/meshwright/internal/apply"
	"github.com/meshwright/meshwright/internal/render"
	"github.com/meshwright/meshwright/internal/testutil"
)

// chaosPoints returns the kill points of a scenario: $MESHWRIGHT_CHAOS_POINTS=K (make test-chaos) tries every N in
// 1..K; by default (make test) a small fixed set that still covers both kill modes (odd N: before the request reaches
// the API server; even N: after it was served).
func chaosPoints(t *testing.T, defaults ...int) []int {
	if v := os.Getenv("MESHWRIGHT_CHAOS_POINTS"); v != "" {
		k, err := strconv.Atoi(v)
		if err != nil || k < 1 {
			t.Fatalf("MESHWRIGHT_CHAOS_POINTS=%q is not a positive count", v)
		}
		var out []int
		for n := 1; n <= k; n++ {
			out = append(out, n)
		}
		return out
	}
	return defaults
}

// withoutDefaultOperator stops the operator config/default deployed for the duration of t (one operator at a time)
// and starts it again afterwards.
func withoutDefaultOperator(t *testing.T) {
	t.Helper()
	if err := operator.stop(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var err error
		if operator, err = startOperator(context.Background(), defaultDeployment, "operator"); err != nil {
			t.Fatalf("restarting the config/default operator: %v", err)
		}
	})
}

// Kill -9 the operator at the N-th mutating request of an install, a RevisionBased upgrade with workload rollout,
// and a deletion; restart it; the mesh converges with nothing orphaned, no duplicate revision, and the revision tags
// never on a revision whose istiod is not available.
func TestChaosKillTheOperatorAtTheNthWrite(t *testing.T) {
	withoutDefaultOperator(t)
	scenarios := []struct {
		name     string
		defaults []int
		run      func(t *testing.T, n int)
	}{
		{"install", []int{2, 7}, chaosInstall},
		{"RevisionBased upgrade with workload rollout", []int{5}, chaosUpgrade},
		{"deletion", []int{1, 4}, chaosDelete},
	}
	for _, sc := range scenarios {
		for _, n := range chaosPoints(t, sc.defaults...) {
			t.Run(fmt.Sprintf("%s killed at mutating request %d", sc.name, n), func(t *testing.T) { sc.run(t, n) })
		}
	}
}

// chaosRun is one trial's operator and proxy.
type chaosRun struct {
	t     *testing.T
	proxy *chaosProxy
	op    *operatorProcess
	n     int
}

func newChaosRun(t *testing.T, n int) *chaosRun {
	c := &chaosRun{t: t, proxy: newChaosProxy(t), n: n}
	c.start("a")
	t.Cleanup(func() {
		if c.op != nil {
			_ = c.op.stop()
		}
	})
	return c
}

func (c *chaosRun) start(suffix string) {
	c.t.Helper()
	op, err := startOperatorWith(context.Background(), defaultDeployment,
		fmt.Sprintf("chaos-%s-%d-%s", strings.ReplaceAll(strings.ToLower(c.t.Name()[strings.LastIndex(c.t.Name(), "/")+1:]), " ", "-"), c.n, suffix),
		runOptions{proxy: c.proxy})
	if err != nil {
		c.t.Fatal(err)
	}
	c.op = op
}

// waitKilledOr waits until the armed proxy killed the operator, or done holds (the scenario needed fewer writes
// than N); then restarts the operator if it was killed.
func (c *chaosRun) waitKilledOr(done func() error) {
	c.t.Helper()
	testutil.Eventually(c.t, readyTimeout, func() error {
		if c.proxy.killed() != "" {
			return nil
		}
		return done()
	})
	c.proxy.disarm()
	if at := c.proxy.killed(); at != "" {
		c.t.Logf("operator killed at mutating request %d: %s", c.n, at)
		c.start("restarted")
	} else {
		c.t.Logf("the scenario finished in fewer than %d mutating requests; nothing to kill", c.n)
	}
}

func chaosMesh(name string) *meshv1.ServiceMesh {
	// istio-system, like the other scenarios: Istio's chart names the revision tag webhooks after the namespace
	// elsewhere, and the simulated injector reads istio-revision-tag-default.
	return &meshv1.ServiceMesh{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

func currentErr(mesh *meshv1.ServiceMesh) error {
	if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(mesh), mesh); err != nil {
		return err
	}
	return testutil.WantKStatus(mesh, status.CurrentStatus)
}

func chaosInstall(t *testing.T, n int) {
	c := newChaosRun(t, n)
	mesh := chaosMesh("chaos")
	c.proxy.arm(c.op, n)
	if err := k8sClient.Create(context.Background(), mesh); err != nil {
		t.Fatal(err)
	}
	c.waitKilledOr(func() error { return currentErr(mesh) })
	waitCurrent(t, mesh)
	assertNothingOrphaned(t, mesh)
	deleteAndWait(t, mesh)
	assertNothingLeft(t, mesh.Name)
}

func chaosDelete(t *testing.T, n int) {
	c := newChaosRun(t, n)
	mesh := chaosMesh("chaos")
	if err := k8sClient.Create(context.Background(), mesh); err != nil {
		t.Fatal(err)
	}
	waitCurrent(t, mesh)
	c.proxy.arm(c.op, n)
	if err := k8sClient.Delete(context.Background(), mesh); err != nil {
		t.Fatal(err)
	}
	c.waitKilledOr(func() error {
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(mesh), &meshv1.ServiceMesh{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("ServiceMesh still present (%v)", err)
		}
		return nil
	})
	// A webhook left pointing at a deleted istiod would block pod creation: deletion starts with the webhooks.
	if first := c.proxy.sinceArmed(); len(first) == 0 || !strings.HasPrefix(first[0], "DELETE /apis/admissionregistration.k8s.io/") {
		t.Errorf("the deletion's first write was %v, want a webhook configuration deleted", first[:min(1, len(first))])
	}
	deleteAndWait(t, mesh)
	assertNothingLeft(t, mesh.Name)
}

func chaosUpgrade(t *testing.T, n int) {
	ctx := context.Background()
	c := newChaosRun(t, n)
	mesh := chaosMesh("chaosrev")
	mesh.Spec.Version = "1.30"
	mesh.Spec.UpdateStrategy = &meshv1.UpdateStrategy{Type: meshv1.UpdateStrategyRevisionBased,
		InactiveRevisionDeletionGracePeriodSeconds: ptr.To[int64](2),
		WorkloadRollout: &meshv1.WorkloadRollout{Enabled: true, MaxConcurrent: ptr.To[int32](1)}}
	if err := k8sClient.Create(ctx, mesh); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteAndWait(t, mesh); assertNothingLeft(t, mesh.Name) })
	waitCurrent(t, mesh)
	apps := injectedApps(t, fmt.Sprintf("chaos-apps-%d", n), 2)
	testutil.Eventually(t, readyTimeout, func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(mesh), mesh); err != nil {
			return err
		}
		if rs := mesh.Status.Revisions; len(rs) != 1 || rs[0].InUsePods != int32(2*len(apps)) {
			return fmt.Errorf("revisions %+v, want %d pods on the 1.30 revision", rs, 2*len(apps))
		}
		return nil
	})

	monitor := watchTags(t, mesh.Spec.Namespace)
	c.proxy.arm(c.op, n)
	patchVersion(t, mesh, "1.31")
	next := mesh.Name + "-1-31-0"
	upgraded := func() error {
		if err := currentErr(mesh); err != nil {
			return err
		}
		if rs := mesh.Status.Revisions; len(rs) != 1 || rs[0].Name != next {
			return fmt.Errorf("revisions %+v, want only %s", rs, next)
		}
		return nil
	}
	c.waitKilledOr(upgraded)
	testutil.Eventually(t, 2*readyTimeout, upgraded)
	monitor.stop()
	if v := monitor.violations(); len(v) > 0 {
		t.Errorf("the default tag pointed at a revision without an available istiod: %v", v)
	}
	if tag := monitor.last(); tag != next {
		t.Errorf("the default tag points at %q, want %s", tag, next)
	}
	assertNoDuplicateRevisions(t, mesh)
	assertNothingOrphaned(t, mesh)
	for _, app := range apps {
		dep := &appsv1.Deployment{}
		if err := k8sClient.Get(ctx, app, dep); err != nil {
			t.Fatal(err)
		}
		if dep.Spec.Template.Annotations[controllers.AnnotationRestartedFor] != next {
			t.Errorf("workload %s was not rolled onto %s", app.Name, next)
		}
	}
}

// injectedApps creates a namespace with injection on and count two-replica Deployments whose pods the simulated
// injector labels with the revision the default tag points at.
func injectedApps(t *testing.T, namespace string, count int) []client.ObjectKey {
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace, Labels: map[string]string{"istio-injection": "enabled"}}}
	if err := k8sClient.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	stop := simulateInjector(t, ns.Name)
	t.Cleanup(func() { stop(); _ = k8sClient.Delete(ctx, ns) })
	var keys []client.ObjectKey
	for i := range count {
		name := fmt.Sprintf("app-%d", i)
		dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: name}, Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name, "sidecar.istio.io/inject": "false"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1"}}}}}}
		if err := k8sClient.Create(ctx, dep); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, client.ObjectKeyFromObject(dep))
	}
	return keys
}

// tagMonitor polls where the default revision tag points and whether that revision's istiod is available.
type tagMonitor struct {
	mu   sync.Mutex
	seen []string
	bad  []string
	// readings counts the consistent readings taken, so a test can wait for one taken after a given moment.
	readings int
	stop     func()
}

func watchTags(t *testing.T, namespace string) *tagMonitor {
	m := &tagMonitor{}
	m.stop = every(50*time.Millisecond, func(ctx context.Context) {
		tag := &admissionv1.MutatingWebhookConfiguration{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Name: "istio-revision-tag-default"}, tag); err != nil {
			return
		}
		rev := tag.Labels["istio.io/rev"]
		dep := &appsv1.Deployment{}
		derr := k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "istiod-" + rev}, dep)
		// Only a reading where the tag did not move while the Deployment was read counts.
		again := &admissionv1.MutatingWebhookConfiguration{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(tag), again); err != nil || again.ResourceVersion != tag.ResourceVersion {
			return
		}
		m.mu.Lock()
		if len(m.seen) == 0 || m.seen[len(m.seen)-1] != rev {
			m.seen = append(m.seen, rev)
		}
		m.readings++
		if derr != nil || dep.Status.AvailableReplicas < 1 {
			m.bad = append(m.bad, fmt.Sprintf("%s at %s (%v)", rev, time.Now().Format(time.StampMilli), derr))
		}
		m.mu.Unlock()
	})
	t.Cleanup(m.stop)
	return m
}

func (m *tagMonitor) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.readings
}

func (m *tagMonitor) violations() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.bad)
}

func (m *tagMonitor) history() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.seen)
}

func (m *tagMonitor) last() string {
	h := m.history()
	if len(h) == 0 {
		return ""
	}
	return h[len(h)-1]
}

// ownedObjects lists, kind by kind, every live object carrying the mesh's owner label.
func ownedObjects(t *testing.T, mesh string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, gvk := range append(slices.Clone(controllers.WatchedKinds), controllers.CRDBackedKinds...) {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		err := k8sClient.List(context.Background(), list, client.MatchingLabels{render.LabelOwner: mesh})
		if meta.IsNoMatchError(err) {
			continue
		}
		if err != nil {
			t.Fatalf("listing %s: %v", gvk.Kind, err)
		}
		for i := range list.Items {
			if list.Items[i].GetDeletionTimestamp() == nil {
				item := list.Items[i]
				item.SetGroupVersionKind(gvk)
				out = append(out, &item)
			}
		}
	}
	return out
}

// assertNothingOrphaned: every live object labelled as the mesh's is in its inventory, so a later prune or deletion
// would find it.
func assertNothingOrphaned(t *testing.T, mesh *meshv1.ServiceMesh) {
	t.Helper()
	if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(mesh), mesh); err != nil {
		t.Fatal(err)
	}
	if mesh.Status.Inventory == nil {
		t.Fatal("no inventory in status")
	}
	owned := ownedObjects(t, mesh.Name)
	if len(owned) == 0 {
		t.Fatal("no live object carries the mesh's owner label; the check checks nothing")
	}
	for _, o := range owned {
		if id := apply.IDOf(o).String(); !slices.Contains(mesh.Status.Inventory.Entries, id) {
			t.Errorf("orphaned: %s is live and labelled as %s's but not in its inventory", id, mesh.Name)
		}
	}
}

// assertNothingLeft: after deletion, only what deletion keeps on purpose (Istio's CRDs, the namespace) still carries
// the mesh's owner label.
func assertNothingLeft(t *testing.T, mesh string) {
	t.Helper()
	testutil.Eventually(t, time.Minute, func() error {
		var left []string
		for _, o := range ownedObjects(t, mesh) {
			if k := o.GetKind(); k != "CustomResourceDefinition" && k != "Namespace" {
				left = append(left, apply.IDOf(o).String())
			}
		}
		if len(left) > 0 {
			return fmt.Errorf("left behind after the mesh was deleted: %v", left)
		}
		return nil
	})
}

func assertNoDuplicateRevisions(t *testing.T, mesh *meshv1.ServiceMesh) {
	t.Helper()
	names := map[string]int{}
	for _, rs := range mesh.Status.Revisions {
		names[rs.Name]++
	}
	for name, count := range names {
		if count > 1 {
			t.Errorf("revision %s listed %d times in status", name, count)
		}
	}
	// A retired revision's istiod is deleted in the reconcile that retires it; give the deletion a moment, but an
	// istiod that stays is an orphaned revision.
	testutil.Eventually(t, 30*time.Second, func() error {
		deps := &appsv1.DeploymentList{}
		if err := k8sClient.List(context.Background(), deps, client.InNamespace(mesh.Spec.Namespace),
			client.MatchingLabels{render.LabelOwner: mesh.Name, "app": "istiod"}); err != nil {
			return err
		}
		var live []string
		for _, d := range deps.Items {
			if d.DeletionTimestamp == nil {
				live = append(live, d.Name)
			}
		}
		if len(live) != len(names) {
			return fmt.Errorf("istiod Deployments %v for revisions %v in status", live, names)
		}
		return nil
	})
}

// Leader election: two operator processes; the leader is frozen (SIGSTOP) in the middle of the reconcile of an
// upgrade, right after its first write, with the rest of that reconcile (planned while the new revision was not ready,
// so with the tags on the old one) still to come; the other takes over after the Lease expires and completes the
// upgrade; the old leader, resumed (SIGCONT), must stop without a single further write, and the revision tags never
// move backwards.
func TestLeaderFailoverFencesThePausedLeader(t *testing.T) {
	ctx := context.Background()
	withoutDefaultOperator(t)
	// Short Lease timings keep the test short; the production defaults are 15s/10s/2s.
	lease := []string{"--leader-election-lease-duration=6s", "--leader-election-renew-deadline=4s", "--leader-election-retry-period=1s"}
	proxyA := newChaosProxy(t)
	a, err := startOperatorWith(ctx, defaultDeployment, "leader-a", runOptions{proxy: proxyA, extraArgs: lease})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.stop() })
	mesh := chaosMesh("failover")
	mesh.Spec.Version = "1.30"
	mesh.Spec.UpdateStrategy = &meshv1.UpdateStrategy{Type: meshv1.UpdateStrategyRevisionBased,
		InactiveRevisionDeletionGracePeriodSeconds: ptr.To[int64](2)}
	if err := k8sClient.Create(ctx, mesh); err != nil {
		t.Fatal(err)
	}
	waitCurrent(t, mesh) // only A runs, so A leads
	b, err := startOperatorWith(ctx, defaultDeployment, "leader-b", runOptions{extraArgs: lease})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteAndWait(t, mesh); assertNothingLeft(t, mesh.Name); _ = b.stop() })
	monitor := watchTags(t, mesh.Spec.Namespace)

	proxyA.pauseAt(a, 1)
	patchVersion(t, mesh, "1.31")
	testutil.Eventually(t, time.Minute, func() error {
		if proxyA.killed() == "" {
			return fmt.Errorf("the leader has not written since the upgrade was asked for")
		}
		return nil
	})
	paused := time.Now()
	t.Logf("the leader was frozen at its write %s", proxyA.killed())
	next := mesh.Name + "-1-31-0"
	testutil.Eventually(t, 2*readyTimeout, func() error {
		if err := currentErr(mesh); err != nil {
			return err
		}
		if mesh.Status.ActiveRevision != next || len(mesh.Status.Revisions) != 1 {
			return fmt.Errorf("active revision %s, revisions %+v; want only %s", mesh.Status.ActiveRevision, mesh.Status.Revisions, next)
		}
		return nil
	})
	t.Logf("the second operator took over and upgraded %s after the leader was paused", time.Since(paused).Round(time.Millisecond))

	proxyA.countFrom(time.Now())
	if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.exited:
	case <-time.After(time.Minute):
		t.Fatal("the resumed old leader did not stop within a minute")
	}
	if writes := proxyA.mutationsSince(); len(writes) > 0 {
		t.Errorf("the resumed old leader wrote %d times before stopping: %v", len(writes), writes)
	}
	// The old leader is gone; anything it wrote is in the API server now. Wait for the monitor to read it.
	seen := monitor.count()
	testutil.Eventually(t, time.Minute, func() error {
		if monitor.count() < seen+2 {
			return fmt.Errorf("the tag monitor has not read the tags since the old leader stopped")
		}
		return nil
	})
	monitor.stop()
	h := monitor.history()
	if i := slices.Index(h, next); i < 0 || slices.Contains(h[i:], mesh.Name+"-1-30-4") {
		t.Errorf("the default tag moved %v; it must reach %s and never move back", h, next)
	}
	if v := monitor.violations(); len(v) > 0 {
		t.Errorf("the default tag pointed at a revision without an available istiod: %v", v)
	}
}
