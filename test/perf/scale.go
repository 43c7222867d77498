package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/test/fakeistiod"
)

var (
	scale     = flag.Bool("scale", true, "run the scale trial once (a populated cluster, then a RevisionBased upgrade of 200 Deployments)")
	onlyScale = flag.Bool("only-scale", false, "run the scale trial only, none of the install trials")
	churnFor  = flag.Duration("churn", 60*time.Second, "how long the scale trial deletes and re-creates injected pods")
)

// The populated cluster of the scale trial (issue 12): many objects the operator must not care about, and injected
// pods it counts.
const (
	scaleNamespaces    = 1000
	scaleSecrets       = 10000
	scaleConfigMaps    = 10000
	scalePods          = 2000
	scalePodNamespaces = 100
	// kwok's simulated nodes take 110 pods each (and have a /24 of pod IPs): 25 hold the injected pods with room for
	// istiod and the scheduler.
	scaleNodes = 25
	// Population runs this many requests at once: enough to be quick, few enough to leave a core to whoever shares
	// the machine.
	scaleWorkers     = 24
	steadyReconciles = 20
	churnBatch       = 100
	scaleLabel       = "perf.meshwright.dev/scale"
)

// runScale runs the scale trial on fresh clusters of its own: the populated cluster's figures, then the upgrade's.
func runScale(ctx context.Context, manager string, f *figures) error {
	began := time.Now()
	if err := withNodes(ctx, scaleNodes, func(c *cluster) error { return scaleTrial(ctx, c, manager, f) }); err != nil {
		return fmt.Errorf("scale trial: %w", err)
	}
	if err := withNodes(ctx, upgradeNodes, func(c *cluster) error { return upgradeTrial(ctx, c, manager, f) }); err != nil {
		return fmt.Errorf("scale trial, upgrade: %w", err)
	}
	fmt.Fprintf(os.Stderr, "scale: the whole scale trial took %s\n", time.Since(began).Round(time.Second))
	return nil
}

// playIstiod serves Istio's injection webhooks on c (test/fakeistiod): the injector webhooks the operator renders
// have failurePolicy Fail, so without it no pod that one of them selects could be created once the mesh exists.
func playIstiod(ctx context.Context, c *cluster) (stop func(), err error) {
	ctx, cancel := context.WithCancel(ctx)
	stopFake, err := fakeistiod.Start(ctx, c.cfg, fakeistiod.Options{EgressSocket: c.egressSocket})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("starting fakeistiod: %w", err)
	}
	return func() { cancel(); stopFake() }, nil
}

// scaleTrial populates a cluster, installs the default mesh into it and measures the operator there: memory and
// install time, CPU and writes per steady-state reconcile, and status writes while injected pods churn.
func scaleTrial(ctx context.Context, c *cluster, manager string, f *figures) error {
	stop, err := playIstiod(ctx, c)
	if err != nil {
		return err
	}
	defer stop()
	pods, err := populate(ctx, c)
	if err != nil {
		return err
	}
	o, err := startReadyOperator(c, manager, false)
	if err != nil {
		return err
	}
	defer o.stop()
	start := time.Now()
	if err := createMesh(ctx, c); err != nil {
		return err
	}
	if err := c.waitReady(ctx, "default"); err != nil {
		return fmt.Errorf("%w (operator log %s)", err, o.log.Name())
	}
	f.add("scale: create → Ready", "s", time.Since(start).Seconds())
	f.add("scale: memory (RSS) after Ready", "MiB", o.settledRSS()/1024)
	f.add("scale: memory peak (VmHWM) after Ready", "MiB", o.procKB("VmHWM")/1024)
	if err := waitInUsePods(ctx, c, "default", scalePods); err != nil {
		return err
	}
	if err := steadyState(ctx, c, o, f); err != nil {
		return err
	}
	return churn(ctx, c, o, f, pods)
}

// populate creates the namespaces, Secrets, ConfigMaps and injected pods, and waits until kwok reports every pod
// Ready. The pods are created before the mesh exists, so no injection webhook is in their way yet; they carry the
// label Istio's injector would have set (istio.io/rev: default), which is all the operator reads of them.
func populate(ctx context.Context, c *cluster) ([]*corev1.Pod, error) {
	began := time.Now()
	nodes := &corev1.NodeList{}
	if err := c.client.List(ctx, nodes); err != nil {
		return nil, err
	}
	if len(nodes.Items) == 0 {
		return nil, errors.New("the cluster has no nodes")
	}
	if err := inParallel(scaleNamespaces, func(i int) error {
		return c.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: scaleNamespace(i), Labels: map[string]string{scaleLabel: "true"}}})
	}); err != nil {
		return nil, fmt.Errorf("creating namespaces: %w", err)
	}
	data := strings.Repeat("unrelated to the mesh; ", 16) // a few hundred bytes
	if err := inParallel(scaleSecrets, func(i int) error {
		return c.client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: scaleNamespace(i % scaleNamespaces), Name: fmt.Sprintf("secret-%d", i)},
			StringData: map[string]string{"data": data}})
	}); err != nil {
		return nil, fmt.Errorf("creating Secrets: %w", err)
	}
	if err := inParallel(scaleConfigMaps, func(i int) error {
		return c.client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: scaleNamespace(i % scaleNamespaces), Name: fmt.Sprintf("config-%d", i)},
			Data: map[string]string{"data": data}})
	}); err != nil {
		return nil, fmt.Errorf("creating ConfigMaps: %w", err)
	}
	pods := make([]*corev1.Pod, scalePods)
	for i := range pods {
		pods[i] = injectedPod(i, nodes.Items[i%len(nodes.Items)].Name)
	}
	if err := inParallel(len(pods), func(i int) error { return createPod(ctx, c, pods[i]) }); err != nil {
		return nil, fmt.Errorf("creating pods: %w", err)
	}
	if err := waitPodsReady(ctx, c, len(pods)); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "scale: %d namespaces, %d Secrets, %d ConfigMaps and %d injected pods (Ready on %d nodes) created in %s\n",
		scaleNamespaces, scaleSecrets, scaleConfigMaps, scalePods, len(nodes.Items), time.Since(began).Round(100*time.Millisecond))
	return pods, nil
}

func scaleNamespace(i int) string { return fmt.Sprintf("scale-%04d", i) }

// injectedPod is the i-th injected pod, bound to node so that kwok runs it without the scheduler.
func injectedPod(i int, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: scaleNamespace(i % scalePodNamespaces), Name: fmt.Sprintf("app-%d", i),
			Labels: map[string]string{"istio.io/rev": "default", "app": "scale", scaleLabel: "true"},
			// What the sidecar injector leaves on an injected pod, so the pods' metadata weighs what it does in a mesh.
			Annotations: injectedPodAnnotations},
		Spec: corev1.PodSpec{NodeName: node, AutomountServiceAccountToken: ptr.To(false),
			Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1"}}},
	}
}

// injectedPodAnnotations are annotations of the size and kind the sidecar injector sets (about 0.5 KB).
var injectedPodAnnotations = map[string]string{
	"sidecar.istio.io/status": `{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["workload-socket",` +
		`"credential-socket","workload-certs","istio-envoy","istio-data","istio-podinfo","istio-token","istiod-ca-cert"],` +
		`"imagePullSecrets":null,"revision":"default"}`,
	"kubectl.kubernetes.io/default-container":      "app",
	"kubectl.kubernetes.io/default-logs-container": "app",
	"prometheus.io/path":                           "/stats/prometheus",
	"prometheus.io/port":                           "15020",
	"prometheus.io/scrape":                         "true",
	"istio.io/rev":                                 "default",
}

// createPod creates a copy of pod, retrying while the namespace's default ServiceAccount, which the ServiceAccount
// admission plugin requires, has not been made yet by the controller manager.
func createPod(ctx context.Context, c *cluster, pod *corev1.Pod) error {
	for attempt := 0; ; attempt++ {
		err := c.client.Create(ctx, pod.DeepCopy())
		if err == nil || attempt >= 100 || !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "service account") {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// inParallel calls do for 0 ≤ i < n on scaleWorkers goroutines; it stops at the first error and returns it.
func inParallel(n int, do func(i int) error) error {
	var next atomic.Int64
	var failed atomic.Bool
	errs := make([]error, scaleWorkers)
	var wg sync.WaitGroup
	for w := range scaleWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := do(i); err != nil {
					errs[w] = err
					failed.Store(true)
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// waitPodsReady polls until want pods of the scale trial are Ready.
func waitPodsReady(ctx context.Context, c *cluster, want int) error {
	deadline := time.Now().Add(*timeout)
	ready := 0
	for time.Now().Before(deadline) {
		pods := &corev1.PodList{}
		if err := c.client.List(ctx, pods, client.MatchingLabels{scaleLabel: "true"}); err != nil {
			return err
		}
		ready = 0
		for _, p := range pods.Items {
			if slices.ContainsFunc(p.Status.Conditions, func(cond corev1.PodCondition) bool {
				return cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue
			}) {
				ready++
			}
		}
		if ready >= want {
			return nil
		}
		time.Sleep(time.Second)
	}
	return fmt.Errorf("%d of %d pods Ready after %s", ready, want, *timeout)
}

// waitInUsePods waits until the mesh's status counts want pods on revision.
func waitInUsePods(ctx context.Context, c *cluster, revision string, want int32) error {
	deadline := time.Now().Add(*timeout)
	var got []meshv1.RevisionStatus
	for time.Now().Before(deadline) {
		m := &meshv1.ServiceMesh{}
		if err := c.client.Get(ctx, client.ObjectKey{Name: "default"}, m); err != nil {
			return err
		}
		got = m.Status.Revisions
		if slices.ContainsFunc(got, func(rs meshv1.RevisionStatus) bool { return rs.Name == revision && rs.InUsePods == want }) {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("status revisions %+v never counted %d pods on %s", got, want, revision)
}

// steadyState forces reconciles of the Ready mesh, one after the other, by changing an annotation of the ServiceMesh
// (its predicates pass annotation changes), and reports the operator's CPU time and writes per reconcile. The
// annotation patches are the harness's own requests, not the operator's: they do not pass the counting proxy.
func steadyState(ctx context.Context, c *cluster, o *operatorProcess, f *figures) error {
	o.proxy.settled()
	offset := o.logOffset()
	cpuBefore, err := o.cpuTime()
	if err != nil {
		return err
	}
	o.proxy.reset()
	for i := range steadyReconciles {
		patch := fmt.Appendf(nil, `{"metadata":{"annotations":{"perf.meshwright.dev/nudge":"%d"}}}`, i)
		mesh := &meshv1.ServiceMesh{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
		if err := c.client.Patch(ctx, mesh, client.RawPatch(types.MergePatchType, patch)); err != nil {
			return err
		}
		if err := o.waitReconciles(offset, i+1); err != nil {
			return err
		}
	}
	cpuAfter, err := o.cpuTime()
	if err != nil {
		return err
	}
	writes := o.proxy.snapshot().writes()
	totals, err := o.reconcileTotals(offset)
	if err != nil {
		return err
	}
	ms := make([]float64, 0, len(totals))
	for _, d := range totals {
		ms = append(ms, float64(d.Microseconds())/1000)
	}
	n := float64(len(totals))
	f.add("scale: CPU per steady-state reconcile", "ms", float64((cpuAfter-cpuBefore).Microseconds())/1000/n)
	f.add("scale: steady-state reconcile, logged total (median)", "ms", median(ms))
	f.add(fmt.Sprintf("scale: writes during %d steady-state reconciles", steadyReconciles), "", float64(writes))
	fmt.Fprintf(os.Stderr, "scale: %d annotation changes of the ServiceMesh caused %d reconciles\n", steadyReconciles, len(totals))
	return nil
}

// waitReconciles waits until at least n reconciles were logged after offset.
func (o *operatorProcess) waitReconciles(offset int64, n int) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		totals, err := o.reconcileTotals(offset)
		if err != nil {
			return err
		}
		if len(totals) >= n {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("reconcile %d not logged within 30 s (operator log %s)", n, o.log.Name())
}

// churn deletes and re-creates the injected pods, churnBatch at a time and as fast as the API server takes them, for
// -churn, and reports how often the operator wrote the ServiceMesh's status meanwhile. The pods are re-created
// through the injection webhook (fakeistiod answers it), as a restarted workload's pods would be.
func churn(ctx context.Context, c *cluster, o *operatorProcess, f *figures, pods []*corev1.Pod) error {
	o.proxy.settled()
	offset := o.logOffset()
	o.proxy.reset()
	start := time.Now()
	turned := 0
	for k := 0; time.Since(start) < *churnFor; k++ {
		first := (k * churnBatch) % len(pods)
		batch := pods[first:min(first+churnBatch, len(pods))]
		if err := inParallel(len(batch), func(i int) error {
			err := c.client.Delete(ctx, batch[i].DeepCopy(), client.GracePeriodSeconds(0))
			return client.IgnoreNotFound(err)
		}); err != nil {
			return fmt.Errorf("deleting pods: %w", err)
		}
		if err := inParallel(len(batch), func(i int) error { return createPod(ctx, c, batch[i]) }); err != nil {
			return fmt.Errorf("re-creating pods: %w", err)
		}
		turned += len(batch)
	}
	elapsed := time.Since(start)
	counts := o.proxy.snapshot()
	totals, err := o.reconcileTotals(offset)
	if err != nil {
		return err
	}
	statusWrites := counts["patch servicemeshes/status"] + counts["update servicemeshes/status"]
	fmt.Fprintf(os.Stderr, "scale: churn turned over %d pods in %s (%.0f pods/s); the operator reconciled %d times and wrote status %d times\n",
		turned, elapsed.Round(100*time.Millisecond), float64(turned)/elapsed.Seconds(), len(totals), statusWrites)
	if turned < len(pods) {
		fmt.Fprintf(os.Stderr, "scale: warning: -churn %s turned over only %d of %d pods\n", *churnFor, turned, len(pods))
	}
	f.add("scale: pods deleted and re-created per minute (churn)", "", roundTo(float64(turned)/elapsed.Minutes(), 0))
	f.add("scale: reconciles per minute under pod churn", "", roundTo(float64(len(totals))/elapsed.Minutes(), 1))
	f.add("scale: ServiceMesh status writes per minute under pod churn", "", roundTo(float64(statusWrites)/elapsed.Minutes(), 1))
	f.add("scale: memory peak (VmHWM) after churn", "MiB", o.procKB("VmHWM")/1024)
	return nil
}

func roundTo(v float64, decimals int) float64 {
	p := 1.0
	for range decimals {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}
