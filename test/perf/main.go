// Command perf measures Meshwright's install and steady-state figures on fresh local kwok clusters, next to the
// floor measured in the same run, and prints them as one table (`make bench`). Every figure is the median of -trials
// trials, each on a fresh cluster; nothing here fails on a slow machine.
//
// The floor is a lean client of ours with a warm REST mapper: it server-side-applies the very objects Meshwright
// renders for the sample mesh, the CRDs concurrently, waits for them to be Established with a watch, then applies
// everything else stage by stage (each stage concurrently) and watches istiod until it is Available.
//
// The operator runs as a process from the same stripped binary as the image, with leader election, behind a loopback
// proxy that counts its API requests by verb.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/istio"
	"github.com/meshwright/meshwright/internal/render"
)

var (
	trials    = flag.Int("trials", 5, "trials per figure (the median is reported)")
	atRestFor = flag.Duration("rest", 60*time.Second, "how long to count writes of a Ready mesh at rest")
	repo      = flag.String("repo", ".", "the repository root")
	timeout   = flag.Duration("timeout", 3*time.Minute, "how long one install may take")
)

func main() {
	flag.Parse()
	ctrl.SetLogger(logr.Discard())
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "perf:", err)
		os.Exit(1)
	}
}

// figures collects the samples of each figure by name, in the order first reported.
type figures struct {
	order   []string
	samples map[string][]float64
	unit    map[string]string
}

func (f *figures) add(name, unit string, v float64) {
	if f.samples == nil {
		f.samples, f.unit = map[string][]float64{}, map[string]string{}
	}
	if _, ok := f.samples[name]; !ok {
		f.order = append(f.order, name)
	}
	f.samples[name] = append(f.samples[name], v)
	f.unit[name] = unit
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func run() error {
	ctx := context.Background()
	manager := filepath.Join(*repo, "bin", "manager-perf")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", manager, ".")
	build.Dir, build.Stderr = *repo, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building the manager: %w", err)
	}
	var f figures
	for i := 0; i < *trials; i++ {
		fmt.Fprintf(os.Stderr, "== trial %d of %d\n", i+1, *trials)
		if err := withCluster(ctx, func(c *cluster) error { return floorTrial(ctx, c, &f, false) }); err != nil {
			return err
		}
		if err := withCluster(ctx, func(c *cluster) error { return floorTrial(ctx, c, &f, true) }); err != nil {
			return err
		}
		if err := withCluster(ctx, func(c *cluster) error { return operatorTrial(ctx, c, manager, &f, false, i == 0) }); err != nil {
			return err
		}
		if err := withCluster(ctx, func(c *cluster) error { return operatorTrial(ctx, c, manager, &f, true, false) }); err != nil {
			return err
		}
		if err := withCluster(ctx, func(c *cluster) error { return simultaneousTrial(ctx, c, manager, &f) }); err != nil {
			return err
		}
	}
	printTable(&f)
	return nil
}

func printTable(f *figures) {
	host, _ := os.Hostname()
	fmt.Printf("\nmake bench: %d trials per figure on %s (%d CPUs), kwok cluster with 3 simulated nodes, Istio %s\n\n",
		*trials, host, runtimeNumCPU(), istio.DefaultCatalog.Versions[0].Version)
	fmt.Println("| figure | median | min – max | floor (median) | × floor |")
	fmt.Println("|---|---|---|---|---|")
	floors := map[string]string{
		"create → Ready, cold operator, Istio CRDs installed by it":       "floor: create → istiod Available, CRDs applied",
		"create → Ready, cold operator, Istio CRDs present":               "floor: create → istiod Available, CRDs present",
		"create → Ready, warm operator (second install), CRDs present":    "floor: create → istiod Available, CRDs present",
		"operator and ServiceMesh applied together → Ready, CRDs present": "floor: create → istiod Available, CRDs present",
	}
	for _, name := range f.order {
		if strings.HasPrefix(name, "floor:") {
			continue
		}
		s := f.samples[name]
		line := fmt.Sprintf("| %s | %s | %s – %s |", name, format(median(s), f.unit[name]), format(slices.Min(s), f.unit[name]), format(slices.Max(s), f.unit[name]))
		if fl, ok := floors[name]; ok && len(f.samples[fl]) > 0 {
			m := median(f.samples[fl])
			line += fmt.Sprintf(" %s | %.2f× |", format(m, "s"), median(s)/m)
		} else {
			line += " | |"
		}
		fmt.Println(line)
	}
	for _, name := range f.order {
		if strings.HasPrefix(name, "floor:") {
			s := f.samples[name]
			fmt.Printf("| %s | %s | %s – %s | | |\n", name, format(median(s), "s"), format(slices.Min(s), "s"), format(slices.Max(s), "s"))
		}
	}
}

func format(v float64, unit string) string {
	switch unit {
	case "s":
		return fmt.Sprintf("%.2f s", v)
	case "MiB":
		return fmt.Sprintf("%.1f MiB", v)
	default:
		return strconv.FormatFloat(v, 'f', -1, 64) + unit
	}
}

// cluster is one fresh kwok cluster.
type cluster struct {
	name, kubeconfig string
	cfg              *rest.Config
	client           client.WithWatch
	dyn              dynamic.Interface
	mapper           meta.RESTMapper
}

var clusterSeq int

func withCluster(ctx context.Context, do func(*cluster) error) error {
	clusterSeq++
	dir, err := os.MkdirTemp("", "meshwright-perf-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	c := &cluster{name: fmt.Sprintf("meshwright-perf-%d", clusterSeq), kubeconfig: filepath.Join(dir, "kubeconfig")}
	env := append(os.Environ(), "CLUSTER_NAME="+c.name, "KUBECONFIG_OUT="+c.kubeconfig, "EGRESS_SOCKET="+filepath.Join(dir, "egress.sock"))
	script := filepath.Join(*repo, "hack", "cluster.sh")
	down := func() {
		cmd := exec.Command(script, "down")
		cmd.Env = env
		_ = cmd.Run()
	}
	down()
	defer down()
	up := exec.Command(script, "up")
	up.Env, up.Stderr = env, nil
	if out, err := up.Output(); err != nil {
		return fmt.Errorf("starting cluster %s: %w (%s)", c.name, err, out)
	}
	if c.cfg, err = clientcmd.BuildConfigFromFlags("", c.kubeconfig); err != nil {
		return err
	}
	c.cfg.QPS, c.cfg.Burst = 1000, 2000
	s := runtime.NewScheme()
	_ = scheme.AddToScheme(s)
	_ = apiextensionsv1.AddToScheme(s)
	_ = meshv1.AddToScheme(s)
	if c.client, err = client.NewWithWatch(c.cfg, client.Options{Scheme: s}); err != nil {
		return err
	}
	if c.dyn, err = dynamic.NewForConfig(c.cfg); err != nil {
		return err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(c.cfg)
	if err != nil {
		return err
	}
	groups, err := restmapper.GetAPIGroupResources(dc)
	if err != nil {
		return err
	}
	c.mapper = restmapper.NewDiscoveryRESTMapper(groups)
	// The ServiceMesh CRD is installed before any trial starts, as `kubectl apply -k config/default` would.
	crd, err := os.ReadFile(filepath.Join(*repo, "config", "crd", "bases", "mesh.meshwright.dev_servicemeshes.yaml"))
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{}
	if err := yamlToObject(crd, u); err != nil {
		return err
	}
	if err := c.apply(ctx, u, schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}); err != nil {
		return err
	}
	if err := c.waitEstablished(ctx, []string{u.GetName()}); err != nil {
		return err
	}
	return do(c)
}

func (c *cluster) apply(ctx context.Context, u *unstructured.Unstructured, gvr schema.GroupVersionResource) error {
	var ri dynamic.ResourceInterface = c.dyn.Resource(gvr)
	if u.GetNamespace() != "" {
		ri = c.dyn.Resource(gvr).Namespace(u.GetNamespace())
	}
	_, err := ri.Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: "perf-floor", Force: true})
	if err != nil {
		return fmt.Errorf("applying %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	return nil
}

// waitEstablished watches CRDs until every one of names is Established.
func (c *cluster) waitEstablished(ctx context.Context, names []string) error {
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	pending := sets.New(names...)
	list := &apiextensionsv1.CustomResourceDefinitionList{}
	w, err := c.client.Watch(ctx, list)
	if err != nil {
		return err
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		crd, ok := ev.Object.(*apiextensionsv1.CustomResourceDefinition)
		if !ok {
			continue
		}
		for _, cond := range crd.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				pending.Delete(crd.Name)
			}
		}
		if pending.Len() == 0 {
			return nil
		}
	}
	return fmt.Errorf("CRDs %v not Established: %w", sets.List(pending), ctx.Err())
}

// waitAvailable watches a Deployment until it is Available; with notUID, an earlier incarnation does not count.
func (c *cluster) waitAvailable(ctx context.Context, namespace, name string, notUID string) error {
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	w, err := c.client.Watch(ctx, &appsv1.DeploymentList{}, client.InNamespace(namespace))
	if err != nil {
		return err
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		d, ok := ev.Object.(*appsv1.Deployment)
		if !ok || d.Name != name || string(d.UID) == notUID || ev.Type == watch.Deleted {
			continue
		}
		for _, cond := range d.Status.Conditions {
			if cond.Type == appsv1.DeploymentAvailable && cond.Status == "True" && d.Status.ObservedGeneration == d.Generation {
				return nil
			}
		}
	}
	return fmt.Errorf("Deployment %s/%s not Available: %w", namespace, name, ctx.Err())
}

// waitReady watches a ServiceMesh until its Ready condition is True for its current generation.
func (c *cluster) waitReady(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	w, err := c.client.Watch(ctx, &meshv1.ServiceMeshList{})
	if err != nil {
		return err
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		m, ok := ev.Object.(*meshv1.ServiceMesh)
		if !ok || m.Name != name {
			continue
		}
		if c := meta.FindStatusCondition(m.Status.Conditions, meshv1.ConditionReady); c != nil && c.Status == metav1.ConditionTrue &&
			m.Status.ObservedGeneration == m.Generation {
			return nil
		}
	}
	return fmt.Errorf("ServiceMesh %s not Ready: %w", name, ctx.Err())
}

// sampleObjects are the objects Meshwright renders for the sample mesh: what the floor applies.
func sampleObjects() ([]*unstructured.Unstructured, error) {
	v := istio.DefaultCatalog.Versions[0]
	return render.Render(render.Config{MeshName: "default", Namespace: "istio-system", Hub: istio.DefaultCatalog.Hub,
		Version: v, KubeVersion: "v1.37.0", Spec: meshv1.ServiceMeshSpec{Namespace: "istio-system"}})
}

func (c *cluster) gvr(u *unstructured.Unstructured, crds []*unstructured.Unstructured) (schema.GroupVersionResource, error) {
	gvk := u.GroupVersionKind()
	if m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err == nil {
		return m.Resource, nil
	}
	for _, crd := range crds {
		group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
		plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
		if group == gvk.Group && kind == gvk.Kind {
			return schema.GroupVersionResource{Group: group, Version: gvk.Version, Resource: plural}, nil
		}
	}
	return schema.GroupVersionResource{}, fmt.Errorf("no resource for %s", gvk)
}

// applyConcurrently applies objs all at once.
func (c *cluster) applyConcurrently(ctx context.Context, objs, crds []*unstructured.Unstructured) error {
	var wg sync.WaitGroup
	errs := make([]error, len(objs))
	for i, o := range objs {
		gvr, err := c.gvr(o, crds)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.apply(ctx, o, gvr)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// floorTrial measures the floor: the sample's objects applied by a lean client until istiod is Available.
func floorTrial(ctx context.Context, c *cluster, f *figures, crdsPresent bool) error {
	objs, err := sampleObjects()
	if err != nil {
		return err
	}
	var crds, rest []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, o)
		} else {
			rest = append(rest, o)
		}
	}
	names := make([]string, 0, len(crds))
	for _, crd := range crds {
		names = append(names, crd.GetName())
	}
	installCRDs := func() error {
		if err := c.applyConcurrently(ctx, crds, nil); err != nil {
			return err
		}
		return c.waitEstablished(ctx, names)
	}
	if crdsPresent {
		if err := installCRDs(); err != nil {
			return err
		}
	}
	start := time.Now()
	if !crdsPresent {
		if err := installCRDs(); err != nil {
			return err
		}
	}
	for stage := render.StageDefinitions; stage <= render.StageWebhooks; stage++ {
		var batch []*unstructured.Unstructured
		for _, o := range rest {
			if render.StageOf(o) == stage {
				batch = append(batch, o)
			}
		}
		if err := c.applyConcurrently(ctx, batch, crds); err != nil {
			return err
		}
	}
	if err := c.waitAvailable(ctx, "istio-system", "istiod", ""); err != nil {
		return err
	}
	name := "floor: create → istiod Available, CRDs applied"
	if crdsPresent {
		name = "floor: create → istiod Available, CRDs present"
	}
	f.add(name, "s", time.Since(start).Seconds())
	return nil
}

// operatorProcess is the manager running against a cluster through the counting proxy.
type operatorProcess struct {
	cmd   *exec.Cmd
	proxy *countingProxy
	ready string
	log   *os.File
}

func startOperator(c *cluster, manager string) (*operatorProcess, error) {
	p, err := newCountingProxy(c.cfg)
	if err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(filepath.Dir(c.kubeconfig), "operator.kubeconfig")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["perf"] = &clientcmdapi.Cluster{Server: p.url}
	kc.Contexts["perf"] = &clientcmdapi.Context{Cluster: "perf", AuthInfo: "perf"}
	kc.AuthInfos["perf"] = &clientcmdapi.AuthInfo{}
	kc.CurrentContext = "perf"
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		return nil, err
	}
	probe, err := freePort()
	if err != nil {
		return nil, err
	}
	logFile, err := os.CreateTemp("", "meshwright-perf-operator-*.log")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(manager, "--leader-elect", "--leader-election-namespace=default", "--zap-log-level=debug", "--zap-time-encoding=rfc3339nano",
		"--health-probe-bind-address=127.0.0.1:"+strconv.Itoa(probe), "--metrics-bind-address=0")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "POD_NAMESPACE=default")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &operatorProcess{cmd: cmd, proxy: p, ready: fmt.Sprintf("http://127.0.0.1:%d/readyz", probe), log: logFile}, nil
}

func (o *operatorProcess) waitReady() error {
	deadline := time.Now().Add(*timeout)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(o.ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("operator not ready (log %s)", o.log.Name())
}

func (o *operatorProcess) stop() {
	_ = o.cmd.Process.Kill()
	_, _ = o.cmd.Process.Wait()
	o.proxy.close()
	o.log.Close()
	if os.Getenv("PERF_KEEP_LOGS") == "" {
		os.Remove(o.log.Name())
	} else {
		fmt.Fprintln(os.Stderr, "operator log:", o.log.Name())
	}
}

// phaseOrder are the reconcile phases the operator logs ("Reconciled", at debug level) with their durations; "start"
// is what a reconcile does before them (reading the mesh, its finalizer).
var phaseOrder = []string{"start", "conflicts", "observe", "resolve", "revisions", "render", "ownership", "certificates", "apply", "assess"}

func (o *operatorProcess) logOffset() int64 {
	st, err := o.log.Stat()
	if err != nil {
		return 0
	}
	return st.Size()
}

// phaseTimes sums, over the reconciles logged after offset, the time spent in each phase.
func (o *operatorProcess) phaseTimes(offset int64) (map[string]time.Duration, int, error) {
	data, err := os.ReadFile(o.log.Name())
	if err != nil {
		return nil, 0, err
	}
	sums, n := map[string]time.Duration{}, 0
	for _, line := range strings.Split(string(data[min(int(offset), len(data)):]), "\n") {
		if !strings.Contains(line, `"msg":"Reconciled"`) {
			continue
		}
		entry := map[string]any{}
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			continue
		}
		n++
		for _, ph := range phaseOrder {
			if v, ok := entry[ph].(string); ok {
				if d, err := time.ParseDuration(v); err == nil {
					sums[ph] += d
				}
			}
		}
	}
	return sums, n, nil
}

// procKB reads a field of the operator's /proc status in KiB.
func (o *operatorProcess) procKB(field string) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", o.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, field+":") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb
		}
	}
	return 0
}

func createMesh(ctx context.Context, c *cluster) error {
	return c.client.Create(ctx, &meshv1.ServiceMesh{ObjectMeta: metav1.ObjectMeta{Name: "default"}})
}

func deleteMesh(ctx context.Context, c *cluster) error {
	m := &meshv1.ServiceMesh{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	if err := c.client.Delete(ctx, m); err != nil {
		return err
	}
	deadline := time.Now().Add(*timeout)
	for time.Now().Before(deadline) {
		if err := c.client.Get(ctx, client.ObjectKeyFromObject(m), m); apierrors.IsNotFound(err) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("ServiceMesh default not deleted")
}

func preinstallIstioCRDs(ctx context.Context, c *cluster) error {
	objs, err := sampleObjects()
	if err != nil {
		return err
	}
	var crds []*unstructured.Unstructured
	var names []string
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			crds, names = append(crds, o), append(names, o.GetName())
		}
	}
	if err := c.applyConcurrently(ctx, crds, nil); err != nil {
		return err
	}
	return c.waitEstablished(ctx, names)
}

// operatorTrial measures a cold install (the operator started and ready before the ServiceMesh is created), then
// the operator's figures on the Ready mesh: istiod deleted → back, memory, writes at rest, and a warm second install.
func operatorTrial(ctx context.Context, c *cluster, manager string, f *figures, crdsPresent, atRest bool) error {
	if crdsPresent {
		if err := preinstallIstioCRDs(ctx, c); err != nil {
			return err
		}
	}
	o, err := startOperator(c, manager)
	if err != nil {
		return err
	}
	defer o.stop()
	if err := o.waitReady(); err != nil {
		return err
	}
	startup := o.proxy.settled()
	idle := o.procKB("VmRSS")
	offset := o.logOffset()
	start := time.Now()
	o.proxy.reset()
	if err := createMesh(ctx, c); err != nil {
		return err
	}
	if err := c.waitReady(ctx, "default"); err != nil {
		return fmt.Errorf("%w (operator log %s)", err, o.log.Name())
	}
	took := time.Since(start).Seconds()
	install := o.proxy.snapshot()
	label := "CRDs installed by it"
	if crdsPresent {
		label = "CRDs present"
	}
	phases, reconciles, err := o.phaseTimes(offset)
	if err != nil {
		return err
	}
	f.add("reconciles per install ("+label+")", "", float64(reconciles))
	for _, ph := range phaseOrder {
		f.add(fmt.Sprintf("cold install (%s): time in %s", label, ph), "s", phases[ph].Seconds())
	}
	if !crdsPresent {
		f.add("create → Ready, cold operator, Istio CRDs installed by it", "s", took)
		f.add("API requests per install (CRDs installed by it)", "", float64(install.total()))
		f.add("LIST + WATCH requests at start-up", "", float64(startup.verb("list")+startup.verb("watch")))
		f.add("memory (RSS) idle", "MiB", idle/1024)
		f.add("memory (RSS) after Ready", "MiB", o.procKB("VmRSS")/1024)
		f.add("memory peak (VmHWM) after Ready", "MiB", o.procKB("VmHWM")/1024)

		dep := &appsv1.Deployment{}
		if err := c.client.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "istiod"}, dep); err != nil {
			return err
		}
		start = time.Now()
		if err := c.client.Delete(ctx, dep); err != nil {
			return err
		}
		if err := c.waitAvailable(ctx, "istio-system", "istiod", string(dep.UID)); err != nil {
			return err
		}
		f.add("deleted istiod → Available again", "s", time.Since(start).Seconds())
		if atRest {
			time.Sleep(2 * time.Second) // let the repair's own status write land
			o.proxy.reset()
			time.Sleep(*atRestFor)
			f.add(fmt.Sprintf("writes in %s at rest", atRestFor.String()), "", float64(o.proxy.snapshot().writes()))
		}
		if err := deleteMesh(ctx, c); err != nil {
			return err
		}
		start = time.Now()
		if err := createMesh(ctx, c); err != nil {
			return err
		}
		if err := c.waitReady(ctx, "default"); err != nil {
			return err
		}
		f.add("create → Ready, warm operator (second install), CRDs present", "s", time.Since(start).Seconds())
		return nil
	}
	f.add("create → Ready, cold operator, Istio CRDs present", "s", took)
	f.add("API requests per install (CRDs present)", "", float64(install.total()))
	return nil
}

// simultaneousTrial starts the operator and creates the ServiceMesh at the same moment (start-up included).
func simultaneousTrial(ctx context.Context, c *cluster, manager string, f *figures) error {
	if err := preinstallIstioCRDs(ctx, c); err != nil {
		return err
	}
	start := time.Now()
	o, err := startOperator(c, manager)
	if err != nil {
		return err
	}
	defer o.stop()
	if err := createMesh(ctx, c); err != nil {
		return err
	}
	if err := c.waitReady(ctx, "default"); err != nil {
		return err
	}
	f.add("operator and ServiceMesh applied together → Ready, CRDs present", "s", time.Since(start).Seconds())
	return nil
}

// countingProxy forwards the operator's requests to the API server with the admin credentials and counts them by
// Kubernetes verb.
type countingProxy struct {
	url    string
	srv    *http.Server
	mu     sync.Mutex
	counts map[string]int
}

type counts map[string]int

func (c counts) total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// verb sums the requests of a verb over every resource.
func (c counts) verb(v string) int {
	n := 0
	for k, count := range c {
		if strings.HasPrefix(k, v+" ") {
			n += count
		}
	}
	return n
}

// writes counts mutating requests, except the leader election's Lease renewals (a replica holding the lease renews
// it every retry period by design).
func (c counts) writes() int {
	n := 0
	for _, v := range []string{"create", "update", "patch", "delete", "deletecollection"} {
		n += c.verb(v) - c[v+" leases"]
	}
	return n
}

func newCountingProxy(cfg *rest.Config) (*countingProxy, error) {
	transport, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, err
	}
	target, err := neturl(cfg.Host)
	if err != nil {
		return nil, err
	}
	p := &countingProxy{counts: map[string]int{}}
	resolver := &request.RequestInfoFactory{APIPrefixes: sets.NewString("api", "apis"), GrouplessAPIPrefixes: sets.NewString("api")}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = transport
	rp.FlushInterval = -1 // watches stream
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p.url = "http://" + ln.Addr().String()
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info, err := resolver.NewRequestInfo(r); err == nil && info.IsResourceRequest {
			p.mu.Lock()
			p.counts[info.Verb+" "+info.Resource]++
			p.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

func (p *countingProxy) snapshot() counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := counts{}
	for k, v := range p.counts {
		out[k] = v
	}
	return out
}

// settled waits until the operator has sent no request for 500 ms (its informers listed and watch), then returns the
// counts so far.
func (p *countingProxy) settled() counts {
	last, quiet := p.snapshot().total(), time.Now()
	for time.Since(quiet) < 500*time.Millisecond {
		time.Sleep(50 * time.Millisecond)
		if n := p.snapshot().total(); n != last {
			last, quiet = n, time.Now()
		}
	}
	return p.snapshot()
}

func (p *countingProxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts = map[string]int{}
}

func (p *countingProxy) close() { _ = p.srv.Close() }

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func yamlToObject(data []byte, u *unstructured.Unstructured) error {
	raw, err := yaml.YAMLToJSON(data)
	if err != nil {
		return err
	}
	return u.UnmarshalJSON(raw)
}

func neturl(host string) (*url.URL, error) { return url.Parse(host) }

func runtimeNumCPU() int { return goruntime.NumCPU() }
