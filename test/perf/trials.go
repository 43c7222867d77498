package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/apply"
	"github.com/meshwright/meshwright/internal/render"
)

// floorTrial measures the floor: the sample's objects applied by a lean client until istiod is Available. Where the
// Istio CRDs come from is as in the operator's trials: none (the floor applies them, timed), left by an earlier
// install (applied before the timed section), or applied by another tool before it: then the floor applies the CRDs
// of a Ready mesh over them, which carry Meshwright's applied hash, so that their metadata changes as an operator's
// adoption changes it.
func floorTrial(ctx context.Context, c *cluster, f *figures, from crds) error {
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
	installCRDs := func(crds []*unstructured.Unstructured) error {
		if err := c.applyConcurrently(ctx, crds, nil); err != nil {
			return err
		}
		traceMark("floor: CRDs applied")
		if err := c.waitEstablished(ctx, names); err != nil {
			return err
		}
		traceMark("floor: CRDs established")
		return nil
	}
	timedCRDs := crds
	switch from {
	case crdsEarlierMesh:
		if err := installCRDs(crds); err != nil {
			return err
		}
		timedCRDs = nil
	case crdsOtherTool:
		if err := preinstallIstioCRDs(ctx, c); err != nil {
			return err
		}
		timedCRDs = make([]*unstructured.Unstructured, len(crds))
		for i, crd := range crds {
			timedCRDs[i] = crd.DeepCopy()
		}
		if err := apply.StampHashes(timedCRDs); err != nil {
			return err
		}
	}
	if err := waitQuiet(); err != nil {
		return err
	}
	start := time.Now()
	traceMark("floor: start")
	if timedCRDs != nil {
		if err := installCRDs(timedCRDs); err != nil {
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
		traceMark("floor: stage %d applied", stage)
	}
	if err := c.waitAvailable(ctx, "istio-system", "istiod", ""); err != nil {
		return err
	}
	traceMark("floor: istiod Available")
	f.add(floorFigure[from], "s", time.Since(start).Seconds())
	return nil
}

// floorFigure names the floor's figure by where the Istio CRDs came from.
var floorFigure = map[crds]string{
	crdsByIt:        "floor: create → istiod Available, CRDs applied",
	crdsEarlierMesh: "floor: create → istiod Available, CRDs present",
	crdsOtherTool:   "floor: create → istiod Available, CRDs from another tool applied over",
}

func createMesh(ctx context.Context, c *cluster) error {
	return c.client.Create(ctx, &meshv1.ServiceMesh{ObjectMeta: metav1.ObjectMeta{Name: "default"}})
}

// installMesh creates the ServiceMesh "default" and waits until it is Ready.
func installMesh(ctx context.Context, c *cluster) error {
	if err := createMesh(ctx, c); err != nil {
		return err
	}
	traceMark("ServiceMesh created")
	if err := c.waitReady(ctx, "default"); err != nil {
		return err
	}
	traceMark("ServiceMesh Ready")
	return nil
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

// preinstallIstioCRDs applies the Istio CRDs as another tool would: its own field manager, no applied hash.
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
	if err := c.applyConcurrentlyAs(ctx, crds, nil, "another-tool"); err != nil {
		return err
	}
	return c.waitEstablished(ctx, names)
}

// crds is where the Istio CRDs come from in an operator trial.
type crds int

const (
	crdsByIt        crds = iota // none present: the operator installs them
	crdsEarlierMesh             // left by an earlier ServiceMesh (deleted; CRDs are retained by default)
	crdsOtherTool               // applied by another tool (without Meshwright's hash): the operator adopts them
)

func (k crds) label() string {
	return [...]string{"CRDs installed by it", "CRDs present", "CRDs adopted from another tool"}[k]
}

// leaveCRDsOfAnEarlierMesh installs a mesh with an operator process of its own, deletes it and stops that operator:
// the Istio CRDs stay, as Meshwright leaves them when a ServiceMesh is deleted (crdDeletionPolicy Retain).
func leaveCRDsOfAnEarlierMesh(ctx context.Context, c *cluster, manager string) error {
	o, err := startOperator(c, manager)
	if err != nil {
		return err
	}
	defer o.stop()
	if err := installMesh(ctx, c); err != nil {
		return err
	}
	return deleteMesh(ctx, c)
}

func presentCRDs(ctx context.Context, c *cluster, manager string, from crds) error {
	switch from {
	case crdsEarlierMesh:
		return leaveCRDsOfAnEarlierMesh(ctx, c, manager)
	case crdsOtherTool:
		return preinstallIstioCRDs(ctx, c)
	}
	return nil
}

// operatorTrial measures a cold install (the operator started and ready before the ServiceMesh is created), then,
// for CRDs installed by it, the operator's figures on the Ready mesh: memory, istiod deleted → back, and a warm second
// install. The operator talks to the API server directly, as the floor's client does: the requests are counted in
// countingTrial, through the proxy, whose hop and CPU would otherwise be charged to the operator.
func operatorTrial(ctx context.Context, c *cluster, manager string, f *figures, from crds) error {
	if err := presentCRDs(ctx, c, manager, from); err != nil {
		return err
	}
	o, err := startReadyOperator(c, manager, true)
	if err != nil {
		return err
	}
	defer o.stop()
	idle := o.settledRSS()
	if err := waitQuiet(); err != nil {
		return err
	}
	offset := o.logOffset()
	start := time.Now()
	if err := createMesh(ctx, c); err != nil {
		return err
	}
	traceMark("cold: ServiceMesh created")
	if err := c.waitReady(ctx, "default"); err != nil {
		return fmt.Errorf("%w (operator log %s)", err, o.log.Name())
	}
	traceMark("cold: ServiceMesh Ready")
	took := time.Since(start).Seconds()
	label := from.label()
	phases, reconciles, err := o.phaseTimes(offset)
	if err != nil {
		return err
	}
	if from != crdsOtherTool {
		f.add("reconciles per install ("+label+")", "", float64(reconciles))
		for _, ph := range phaseOrder {
			f.add(fmt.Sprintf("cold install (%s): time in %s", label, ph), "s", phases[ph].Seconds())
		}
	}
	switch from {
	case crdsOtherTool:
		f.add("create → Ready, cold operator, Istio CRDs from another tool (adopted)", "s", took)
		return nil
	case crdsEarlierMesh:
		f.add("create → Ready, cold operator, Istio CRDs present", "s", took)
		return nil
	}
	f.add("create → Ready, cold operator, Istio CRDs installed by it", "s", took)
	f.add("memory (RSS) idle", "MiB", idle/1024)
	f.add("memory (RSS) after Ready", "MiB", o.settledRSS()/1024)
	f.add("memory peak (VmHWM) after Ready", "MiB", o.procKB("VmHWM")/1024)
	if err := repairIstiod(ctx, c, f); err != nil {
		return err
	}
	if err := deleteMesh(ctx, c); err != nil {
		return err
	}
	if err := waitQuiet(); err != nil {
		return err
	}
	start = time.Now()
	if err := installMesh(ctx, c); err != nil {
		return err
	}
	f.add("create → Ready, warm operator (second install), CRDs present", "s", time.Since(start).Seconds())
	return nil
}

// repairIstiod deletes istiod's Deployment of a Ready mesh and times its return to Available.
func repairIstiod(ctx context.Context, c *cluster, f *figures) error {
	dep := &appsv1.Deployment{}
	if err := c.client.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "istiod"}, dep); err != nil {
		return err
	}
	start := time.Now()
	if err := c.client.Delete(ctx, dep); err != nil {
		return err
	}
	if err := c.waitAvailable(ctx, "istio-system", "istiod", string(dep.UID)); err != nil {
		return err
	}
	if f != nil {
		f.add("deleted istiod → Available again", "s", time.Since(start).Seconds())
	}
	return nil
}

// countingTrial counts the operator's API requests through the counting proxy: at start-up, for an install that
// installs the CRDs, and for a second install that finds them present; with atRest, also the writes of a Ready mesh
// at rest after a repair. Nothing here is timed.
func countingTrial(ctx context.Context, c *cluster, manager string, f *figures, atRest bool) error {
	o, err := startReadyOperator(c, manager, false)
	if err != nil {
		return err
	}
	defer o.stop()
	startup := o.proxy.settled()
	f.add("LIST + WATCH requests at start-up", "", float64(startup.verb("list")+startup.verb("watch")))
	for _, from := range []crds{crdsByIt, crdsEarlierMesh} {
		o.proxy.reset()
		if err := installMesh(ctx, c); err != nil {
			return fmt.Errorf("%w (operator log %s)", err, o.log.Name())
		}
		f.add("API requests per install ("+from.label()+")", "", float64(o.proxy.snapshot().total()))
		if from == crdsByIt && atRest {
			if err := repairIstiod(ctx, c, nil); err != nil {
				return err
			}
			time.Sleep(2 * time.Second) // let the repair's own status write land
			o.proxy.reset()
			time.Sleep(*atRestFor)
			f.add(fmt.Sprintf("writes in %s at rest", atRestFor.String()), "", float64(o.proxy.snapshot().writes()))
			f.add(fmt.Sprintf("memory (RSS) after Ready, a repair and %s at rest", atRestFor.String()), "MiB", o.procKB("VmRSS")/1024)
		}
		if err := deleteMesh(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// simultaneousTrial starts the operator and creates the ServiceMesh at the same moment (start-up included), with
// Istio's CRDs left by an earlier mesh or, for crdsByIt, none: the operator installs them.
func simultaneousTrial(ctx context.Context, c *cluster, manager string, f *figures, from crds) error {
	if err := presentCRDs(ctx, c, manager, from); err != nil {
		return err
	}
	if err := waitQuiet(); err != nil {
		return err
	}
	start := time.Now()
	o, err := startOperatorDirect(c, manager)
	if err != nil {
		return err
	}
	defer o.stop()
	if err := installMesh(ctx, c); err != nil {
		return err
	}
	took := time.Since(start)
	cpu, err := o.cpuTime()
	if err != nil {
		return err
	}
	f.add("operator and ServiceMesh applied together → Ready, "+from.label(), "s", took.Seconds())
	f.add("operator and ServiceMesh applied together, "+from.label()+": operator CPU until Ready", "ms", float64(cpu.Milliseconds()))
	return nil
}
