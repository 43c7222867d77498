package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/istio"
	"github.com/meshwright/meshwright/internal/render"
)

// cluster is one fresh kwok cluster.
type cluster struct {
	name, kubeconfig string
	egressSocket     string // where kube-apiserver sends webhook calls (test/fakeistiod serves there)
	cfg              *rest.Config
	client           client.WithWatch
	dyn              dynamic.Interface
	mapper           meta.RESTMapper
}

var clusterSeq int

func withCluster(ctx context.Context, do func(*cluster) error) error {
	return withNodes(ctx, 0, do)
}

// withNodes is withCluster with nodes simulated nodes (0: hack/cluster.sh's default).
func withNodes(ctx context.Context, nodes int, do func(*cluster) error) error {
	clusterSeq++
	dir, err := os.MkdirTemp("", "meshwright-perf-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	c := &cluster{name: fmt.Sprintf("meshwright-perf-%d", clusterSeq), kubeconfig: filepath.Join(dir, "kubeconfig"),
		egressSocket: filepath.Join(dir, "egress.sock")}
	env := append(os.Environ(), "CLUSTER_NAME="+c.name, "KUBECONFIG_OUT="+c.kubeconfig, "EGRESS_SOCKET="+c.egressSocket)
	if nodes > 0 {
		env = append(env, "NODES="+strconv.Itoa(nodes))
	}
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
	if err := c.applyAs(ctx, u, schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}, "perf-floor"); err != nil {
		return err
	}
	if err := c.waitEstablished(ctx, []string{u.GetName()}); err != nil {
		return err
	}
	if err := c.settle(ctx); err != nil {
		return err
	}
	return do(c)
}

// settle returns once the fresh cluster is as a user's would be when they apply a ServiceMesh, so that no trial pays
// for the cluster's own start-up: the controller manager runs (it has made the default ServiceAccount), and the API
// server has served a first write of a ServiceMesh (a dry run). That first write to a just-established CRD takes the
// API server about 2 s here, and counting it would charge the operator's figures, not the floor's, for it.
func (c *cluster) settle(ctx context.Context) error {
	deadline := time.Now().Add(*timeout)
	for {
		err := c.client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "default"}, &corev1.ServiceAccount{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the cluster's controller manager made no default ServiceAccount: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// An Established CRD may reach discovery a moment later: until then the client knows no such kind.
	for {
		dry := &meshv1.ServiceMesh{ObjectMeta: metav1.ObjectMeta{Name: "dry-run"}}
		err := c.client.Create(ctx, dry, client.DryRunAll)
		if err == nil || !meta.IsNoMatchError(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// applyAs server-side applies u with force as the field manager manager.
func (c *cluster) applyAs(ctx context.Context, u *unstructured.Unstructured, gvr schema.GroupVersionResource, manager string) error {
	var ri dynamic.ResourceInterface = c.dyn.Resource(gvr)
	if u.GetNamespace() != "" {
		ri = c.dyn.Resource(gvr).Namespace(u.GetNamespace())
	}
	_, err := ri.Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: manager, Force: true})
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

// applyConcurrently applies objs all at once as the floor's client.
func (c *cluster) applyConcurrently(ctx context.Context, objs, crds []*unstructured.Unstructured) error {
	return c.applyConcurrentlyAs(ctx, objs, crds, "perf-floor")
}

// applyConcurrentlyAs applies objs all at once as the field manager manager.
func (c *cluster) applyConcurrentlyAs(ctx context.Context, objs, crds []*unstructured.Unstructured, manager string) error {
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
			began := time.Now()
			errs[i] = c.applyAs(ctx, o, gvr, manager)
			if trace != nil {
				fmt.Fprintf(trace, "%s %s floor PATCH %s %s\n", began.UTC().Format("15:04:05.000000"), time.Since(began), o.GetKind(), o.GetName())
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
