// Command perf measures Meshwright's install and steady-state figures on fresh local kwok clusters, next to the
// floor measured in the same run, and prints them as one table (`make bench`). Every figure is the median of -trials
// trials, each on a fresh cluster; nothing here fails on a slow machine.
//
// The floor is a lean client of ours with a warm REST mapper: it server-side-applies the very objects Meshwright
// renders for the sample mesh, the CRDs concurrently, waits for them to be Established with a watch, then applies
// everything else stage by stage (each stage concurrently) and watches istiod until it is Available.
//
// The operator runs as a process from the same stripped binary as the image, with leader election, connected to the API
// server directly in every timed trial, as the floor's client is; the requests it sends are counted in a trial of
// their own, through a loopback proxy that counts them by verb. Each install is timed with Istio's CRDs installed by
// it, left by an earlier mesh, and applied by another tool (adopted: the floor applies a Ready mesh's CRDs over them
// too), from an operator already started and with the operator started at the same moment as the mesh is created.
//
// With -scale (the default), one scale trial follows (scale.go, upgrade.go): the operator on a cluster populated with
// unrelated objects and 2,000 injected pods, and a RevisionBased upgrade that restarts 200 Deployments, next to a
// script that restarts them in batches.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/yaml"

	"github.com/meshwright/meshwright/internal/istio"
)

var (
	trials       = flag.Int("trials", 5, "trials per figure (the median is reported)")
	atRestFor    = flag.Duration("rest", 60*time.Second, "how long to count writes of a Ready mesh at rest")
	repo         = flag.String("repo", ".", "the repository root")
	timeout      = flag.Duration("timeout", 3*time.Minute, "how long one install may take")
	traceFile    = flag.String("trace", "", "log every request of the operators to this file")
	operatorArgs = flag.String("operator-args", "", "more command-line arguments for the operator (to compare settings)")
	onlyTogether = flag.Bool("only-together", false, "run only the trials that start the operator and create the ServiceMesh together (CRDs present, and installed by it), next to the floor")
	onlyCold     = flag.Bool("only-cold", false, "run only the floor with CRDs applied and the cold install that installs the CRDs")
	abEnv        = flag.String("ab-env", "", "with -only-cold: each trial also makes a cold install with this environment (K=V ...) for the operator, reported as [B], to compare a setting under the same conditions")
)

func main() {
	flag.Parse()
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "perf:", err)
			os.Exit(1)
		}
		defer f.Close()
		trace = f
	}
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
	for i := 0; i < *trials && !*onlyScale; i++ {
		fmt.Fprintf(os.Stderr, "== trial %d of %d\n", i+1, *trials)
		if *onlyTogether {
			for _, from := range []crds{crdsByIt, crdsEarlierMesh} {
				if err := withCluster(ctx, func(c *cluster) error { return floorTrial(ctx, c, &f, from) }); err != nil {
					return err
				}
			}
			for _, from := range []crds{crdsEarlierMesh, crdsByIt} {
				if err := withCluster(ctx, func(c *cluster) error { return simultaneousTrial(ctx, c, manager, &f, from) }); err != nil {
					return err
				}
			}
			continue
		}
		if err := withCluster(ctx, func(c *cluster) error { return floorTrial(ctx, c, &f, crdsByIt) }); err != nil {
			return err
		}
		if *onlyCold {
			if err := withCluster(ctx, func(c *cluster) error { return operatorTrial(ctx, c, manager, &f, crdsByIt) }); err != nil {
				return err
			}
			if *abEnv != "" {
				var fb figures
				extraEnv = strings.Fields(*abEnv)
				err := withCluster(ctx, func(c *cluster) error { return operatorTrial(ctx, c, manager, &fb, crdsByIt) })
				extraEnv = nil
				if err != nil {
					return err
				}
				for _, name := range fb.order {
					for _, v := range fb.samples[name] {
						f.add(name+" [B]", fb.unit[name], v)
					}
				}
			}
			continue
		}
		for _, from := range []crds{crdsEarlierMesh, crdsOtherTool} {
			if err := withCluster(ctx, func(c *cluster) error { return floorTrial(ctx, c, &f, from) }); err != nil {
				return err
			}
		}
		if err := withCluster(ctx, func(c *cluster) error { return countingTrial(ctx, c, manager, &f, i == 0) }); err != nil {
			return err
		}
		for _, from := range []crds{crdsByIt, crdsEarlierMesh, crdsOtherTool} {
			if err := withCluster(ctx, func(c *cluster) error { return operatorTrial(ctx, c, manager, &f, from) }); err != nil {
				return err
			}
		}
		for _, from := range []crds{crdsEarlierMesh, crdsByIt} {
			if err := withCluster(ctx, func(c *cluster) error { return simultaneousTrial(ctx, c, manager, &f, from) }); err != nil {
				return err
			}
		}
	}
	if *scale || *onlyScale {
		if err := runScale(ctx, manager, &f); err != nil {
			return err
		}
	}
	printTable(&f)
	return nil
}

func printTable(f *figures) {
	host, _ := os.Hostname()
	fmt.Printf("\nmake bench: %d trials per figure on %s (%d CPUs), kwok cluster with 3 simulated nodes, Istio %s\n\n",
		*trials, host, goruntime.NumCPU(), istio.DefaultCatalog.Versions[0].Version)
	fmt.Println("| figure | median | min – max | floor (median) | × floor |")
	fmt.Println("|---|---|---|---|---|")
	floors := map[string]string{
		"create → Ready, cold operator, Istio CRDs installed by it":               "floor: create → istiod Available, CRDs applied",
		"create → Ready, cold operator, Istio CRDs present":                       "floor: create → istiod Available, CRDs present",
		"create → Ready, cold operator, Istio CRDs from another tool (adopted)":   "floor: create → istiod Available, CRDs from another tool applied over",
		"create → Ready, warm operator (second install), CRDs present":            "floor: create → istiod Available, CRDs present",
		"operator and ServiceMesh applied together → Ready, CRDs present":         "floor: create → istiod Available, CRDs present",
		"operator and ServiceMesh applied together → Ready, CRDs installed by it": "floor: create → istiod Available, CRDs applied",
		upgradeFigure: baselineFigure,
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
	if _, ok := f.samples[upgradeFigure]; ok {
		fmt.Printf("\nscale rows: one trial, on a cluster of %d simulated nodes (the upgrade: %d), whatever -trials says\n", scaleNodes, upgradeNodes)
	}
}

func format(v float64, unit string) string {
	switch unit {
	case "s":
		return fmt.Sprintf("%.2f s", v)
	case "ms":
		return fmt.Sprintf("%.1f ms", v)
	case "MiB":
		return fmt.Sprintf("%.1f MiB", v)
	default:
		return strconv.FormatFloat(v, 'f', -1, 64) + unit
	}
}

func yamlToObject(data []byte, u *unstructured.Unstructured) error {
	raw, err := yaml.YAMLToJSON(data)
	if err != nil {
		return err
	}
	return u.UnmarshalJSON(raw)
}
