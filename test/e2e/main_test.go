//go:build e2e

// Package e2e runs Meshwright as users install it, against a real local cluster (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok's simulated nodes, started by hack/cluster.sh), where Deployments
// really roll out and pods become Ready.
//
// TestMain deploys `config/default` (CRD, RBAC, the manager Deployment in a Pod Security "restricted" namespace) and
// waits for the Deployment to become Available. kwok runs no containers, so the operator itself is the `/manager`
// binary extracted from the built OCI image's linux/amd64 layer, started as a process with the Deployment's own
// command, arguments and environment (addresses moved to free loopback ports) and a kubeconfig holding a TokenRequest
// token of the Deployment's ServiceAccount: never admin credentials, so a missing permission fails a test.
// Run through `make test` (or `make bench` for the benchmarks).
package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshwright/meshwright/internal/testutil"
)

const (
	// operatorNamespace is where config/default installs the operator.
	operatorNamespace = "meshwright-system"
	// operatorDeployment and operatorServiceAccount are config/default's names (namePrefix meshwright-).
	operatorDeployment     = "meshwright-controller-manager"
	operatorServiceAccount = "meshwright-controller-manager"
)

var (
	k8sClient  client.Client
	clientset  kubernetes.Interface
	adminCfg   *rest.Config
	repoRoot   string
	workDir    string
	managerBin string
	// operator is the running operator process (see operator.go); benchmarks read its /proc entries.
	operator *operatorProcess
	// defaultDeployment is the manager Deployment config/default installed; the operator process runs as it.
	defaultDeployment *appsv1.Deployment
	// metricsToken authenticates scrapes of the operator's secure metrics endpoint (a ServiceAccount bound to the
	// metrics-reader ClusterRole that config/rbac ships).
	metricsToken string
	// egressSocket is where the cluster's kube-apiserver sends webhook calls (hack/cluster.sh); fakeistiod.Start
	// listens there to answer Istio's injection webhooks.
	egressSocket string
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
	ctx := context.Background()
	var err error
	if repoRoot, err = filepath.Abs("../.."); err != nil {
		return 1, err
	}
	if workDir, err = os.MkdirTemp("", "meshwright-e2e-"); err != nil {
		return 1, err
	}
	defer os.RemoveAll(workDir)
	kubeconfig := filepath.Join(workDir, "kubeconfig")
	stopCluster, err := startCluster(kubeconfig)
	if err != nil {
		return 1, err
	}
	defer stopCluster()

	if adminCfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig); err != nil {
		return 1, err
	}
	adminCfg.QPS, adminCfg.Burst = 50, 100
	if k8sClient, err = client.New(adminCfg, client.Options{Scheme: testutil.Scheme}); err != nil {
		return 1, err
	}
	if clientset, err = kubernetes.NewForConfig(adminCfg); err != nil {
		return 1, err
	}

	step := stepper()
	if managerBin, err = managerFromImage(); err != nil {
		return 1, err
	}
	step("extracted /manager from the image")
	if defaultDeployment, err = deployDefault(ctx); err != nil {
		return 1, err
	}
	step("config/default deployed, manager Deployment Available")
	if metricsToken, err = metricsScraperToken(ctx); err != nil {
		return 1, err
	}
	if operator, err = startOperator(ctx, defaultDeployment, "operator"); err != nil {
		return 1, err
	}
	step("operator running under its ServiceAccount")
	code := m.Run()
	if err := operator.stop(); err != nil {
		return 1, err
	}
	refused, err := operator.forbidden()
	if err != nil {
		return 1, err
	}
	if len(refused) > 0 {
		return 1, fmt.Errorf("the operator was refused %d requests under its ServiceAccount:\n%s", len(refused), strings.Join(refused, "\n"))
	}
	if code == 0 {
		if err := checkUndeploy(ctx); err != nil {
			return 1, err
		}
	}
	return code, nil
}

func stepper() func(string) {
	start := time.Now()
	return func(what string) {
		fmt.Fprintf(os.Stderr, "e2e [%5.1fs] %s\n", time.Since(start).Seconds(), what)
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// operatorMetrics scrapes the operator's metrics endpoint (HTTPS, authenticated and authorised by the API server,
// as in a cluster) and returns each sample "name{labels}" with its value.
func operatorMetrics(t testing.TB) map[string]float64 {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "https://"+operator.metricsAddr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+metricsToken)
	// The metrics server's certificate is self-signed (controller-runtime generates it when none is mounted).
	httpClient := &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback, self-signed
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping metrics: %s", resp.Status)
	}
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

// every runs sample every interval in a goroutine until the returned stop is called (more than once is fine); stop
// waits for the sample in progress, whose ctx it cancels.
func every(interval time.Duration, sample func(ctx context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			sample(ctx)
		}
	}()
	return func() { cancel(); <-done }
}
