//go:build e2e

// Package e2e runs the operator as a process against a real local cluster (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok's simulated nodes, started by hack/cluster.sh), where Deployments
// really roll out and pods become Ready. Run through `make test` (or `make bench` for the benchmarks).
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/meshwright/meshwright/internal/testutil"
)

var (
	k8sClient   client.Client
	operator    *exec.Cmd
	metricsAddr string
	repoRoot    string
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	var err error
	if repoRoot, err = filepath.Abs("../.."); err != nil {
		return 1, err
	}
	work, err := os.MkdirTemp("", "meshwright-e2e-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(work)
	kubeconfig := filepath.Join(work, "kubeconfig")
	clusterEnv := append(os.Environ(), "CLUSTER_NAME=meshwright-e2e", "KUBECONFIG_OUT="+kubeconfig)

	down := exec.Command(filepath.Join(repoRoot, "hack/cluster.sh"), "down")
	down.Env, down.Stderr = clusterEnv, os.Stderr
	_ = down.Run() // a cluster left by an interrupted run
	up := exec.Command(filepath.Join(repoRoot, "hack/cluster.sh"), "up")
	up.Env, up.Stdout, up.Stderr = clusterEnv, nil, os.Stderr
	if err := up.Run(); err != nil {
		return 1, fmt.Errorf("starting the kwok cluster: %w", err)
	}
	defer func() {
		down := exec.Command(filepath.Join(repoRoot, "hack/cluster.sh"), "down")
		down.Env, down.Stderr = clusterEnv, os.Stderr
		_ = down.Run()
	}()

	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return 1, err
	}
	cfg.QPS, cfg.Burst = 50, 100
	if k8sClient, err = client.New(cfg, client.Options{Scheme: testutil.Scheme}); err != nil {
		return 1, err
	}
	if err := installCRD(); err != nil {
		return 1, err
	}

	manager := filepath.Join(work, "manager")
	build := exec.Command("go", "build", "-o", manager, ".")
	build.Dir, build.Stdout, build.Stderr = repoRoot, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return 1, fmt.Errorf("building the operator: %w", err)
	}
	if metricsAddr, err = freeAddr(); err != nil {
		return 1, err
	}
	logFile, err := os.Create(filepath.Join(os.TempDir(), "meshwright-e2e-operator.log"))
	if err != nil {
		return 1, err
	}
	defer logFile.Close()
	operator = exec.Command(manager, "--metrics-bind-address="+metricsAddr, "--metrics-secure=false",
		"--health-probe-bind-address=127.0.0.1:0")
	operator.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	operator.Stdout, operator.Stderr = logFile, logFile
	if err := operator.Start(); err != nil {
		return 1, fmt.Errorf("starting the operator: %w", err)
	}
	defer func() {
		_ = operator.Process.Signal(os.Interrupt)
		_ = operator.Wait()
	}()
	fmt.Fprintf(os.Stderr, "e2e: operator running (pid %d, metrics http://%s/metrics, log %s)\n",
		operator.Process.Pid, metricsAddr, logFile.Name())
	return m.Run(), nil
}

func installCRD() error {
	data, err := os.ReadFile(filepath.Join(repoRoot, "config/crd/bases/mesh.meshwright.dev_servicemeshes.yaml"))
	if err != nil {
		return err
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.Unmarshal(data, crd); err != nil {
		return err
	}
	if err := k8sClient.Create(context.Background(), crd); err != nil {
		return fmt.Errorf("installing the ServiceMesh CRD: %w", err)
	}
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for ; time.Now().Before(deadline); <-tick.C {
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(crd), crd); err == nil {
			for _, c := range crd.Status.Conditions {
				if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("the ServiceMesh CRD did not become Established")
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// operatorMetrics scrapes the operator's metrics endpoint and returns each sample "name{labels}" with its value.
func operatorMetrics(t testing.TB) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// sumMetric adds the samples of a metric whose labels contain every filter ("key=\"value\"").
func sumMetric(samples map[string]float64, name string, filters ...string) float64 {
	var total float64
	for k, v := range samples {
		if k != name && !strings.HasPrefix(k, name+"{") {
			continue
		}
		ok := true
		for _, f := range filters {
			ok = ok && strings.Contains(k, f)
		}
		if ok {
			total += v
		}
	}
	return total
}
