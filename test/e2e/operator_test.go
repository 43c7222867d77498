//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
)

// operatorProcess is the operator binary running as a process, as its Deployment's container would.
type operatorProcess struct {
	cmd         *exec.Cmd
	metricsAddr string
	probeAddr   string
	logPath     string
	exited      chan struct{}
}

// operatorDate is the date the operators under test run on: every catalog version is supported then.
var operatorDate = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

// startOperator runs managerBin with the command, arguments and environment of deploy's manager container, under a
// TokenRequest token of the Deployment's ServiceAccount. Addresses in the arguments move to free loopback ports
// (many operators may run on one machine); fieldRef environment variables resolve as the kubelet would.
func startOperator(ctx context.Context, deploy *appsv1.Deployment, name string) (*operatorProcess, error) {
	return startOperatorWith(ctx, deploy, name, runOptions{})
}

// runOptions vary how an operator process is started, for the chaos and failover tests.
type runOptions struct {
	// proxy, when set, stands between the operator and the API server.
	proxy *chaosProxy
	// extraArgs follow the Deployment's arguments.
	extraArgs []string
}

func startOperatorWith(ctx context.Context, deploy *appsv1.Deployment, name string, opts runOptions) (*operatorProcess, error) {
	pod := deploy.Spec.Template.Spec
	var container *corev1.Container
	for i := range pod.Containers {
		if pod.Containers[i].Name == "manager" {
			container = &pod.Containers[i]
		}
	}
	if container == nil {
		return nil, fmt.Errorf("deployment %s has no manager container", deploy.Name)
	}
	if len(container.Command) != 1 || container.Command[0] != "/manager" {
		return nil, fmt.Errorf("deployment %s runs %v, not the image's /manager", deploy.Name, container.Command)
	}
	kubeconfig, err := tokenKubeconfigVia(ctx, deploy.Namespace, pod.ServiceAccountName, name, opts.proxy)
	if err != nil {
		return nil, err
	}
	p := &operatorProcess{logPath: filepath.Join(os.TempDir(), "meshwright-e2e-"+name+".log"), exited: make(chan struct{})}
	var args []string
	for _, a := range container.Args {
		flagName, _, _ := strings.Cut(a, "=")
		switch flagName {
		case "--metrics-bind-address":
			if p.metricsAddr, err = freeAddr(); err != nil {
				return nil, err
			}
			a = flagName + "=" + p.metricsAddr
		case "--health-probe-bind-address":
			if p.probeAddr, err = freeAddr(); err != nil {
				return nil, err
			}
			a = flagName + "=" + p.probeAddr
		}
		args = append(args, a)
	}
	args = append(args, opts.extraArgs...)
	if p.metricsAddr == "" || p.probeAddr == "" {
		return nil, fmt.Errorf("deployment %s's arguments %v do not set the metrics and probe addresses", deploy.Name, container.Args)
	}
	// The operator's clock starts on a fixed date (a test-only variable, see controllers/clock.go), so that the
	// versions these tests pin are within their support window on any day.
	env := []string{"KUBECONFIG=" + kubeconfig, "PATH=" + os.Getenv("PATH"), "HOME=" + workDir,
		"MESHWRIGHT_TEST_NOW=" + operatorDate.Format(time.RFC3339)}
	for _, e := range container.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			env = append(env, e.Name+"="+deploy.Namespace)
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		default:
			return nil, fmt.Errorf("environment variable %s: source not simulated by the e2e suite", e.Name)
		}
	}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		return nil, err
	}
	p.cmd = exec.Command(managerBin, args...)
	p.cmd.Env, p.cmd.Stdout, p.cmd.Stderr = env, logFile, logFile
	if err := p.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting the operator: %w", err)
	}
	go func() { _ = p.cmd.Wait(); logFile.Close(); close(p.exited) }()
	fmt.Fprintf(os.Stderr, "e2e: %s running (pid %d, args %v, metrics https://%s/metrics, log %s)\n",
		name, p.cmd.Process.Pid, args, p.metricsAddr, p.logPath)
	if err := p.waitHealthy(time.Minute); err != nil {
		return nil, err
	}
	return p, nil
}

// waitHealthy waits for the readiness probe the Deployment declares to answer.
func (p *operatorProcess) waitHealthy(timeout time.Duration) error {
	deadline := time.After(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !probe("http://" + p.probeAddr + "/readyz") {
		select {
		case <-p.exited:
			return fmt.Errorf("the operator exited; see %s", p.logPath)
		case <-deadline:
			return fmt.Errorf("the operator's readiness probe did not answer within %s; see %s", timeout, p.logPath)
		case <-tick.C:
		}
	}
	return nil
}

// kill sends SIGKILL, as a crash or an OOM kill would, and waits for the process to be gone.
func (p *operatorProcess) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// stop sends SIGTERM, as the kubelet does, and waits for the process to exit.
func (p *operatorProcess) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		return fmt.Errorf("the operator did not stop within 30s of SIGTERM; see %s", p.logPath)
	}
}

// tokenKubeconfigVia writes a kubeconfig that authenticates as the ServiceAccount with a TokenRequest token, the
// credentials a pod of that ServiceAccount would have; it points at proxy instead of the API server when proxy is set.
func tokenKubeconfigVia(ctx context.Context, namespace, serviceAccount, name string, proxy *chaosProxy) (string, error) {
	token, err := requestToken(ctx, namespace, serviceAccount)
	if err != nil {
		return "", err
	}
	cluster := clientcmdapi.NewCluster()
	cluster.Server = adminCfg.Host
	cluster.CertificateAuthorityData = adminCfg.CAData
	if len(cluster.CertificateAuthorityData) == 0 && adminCfg.CAFile != "" {
		if cluster.CertificateAuthorityData, err = os.ReadFile(adminCfg.CAFile); err != nil {
			return "", err
		}
	}
	cluster.InsecureSkipTLSVerify = adminCfg.Insecure
	if proxy != nil {
		cluster.Server, cluster.CertificateAuthorityData = proxy.url(), proxy.caPEM()
	}
	user := clientcmdapi.NewAuthInfo()
	user.Token = token
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kwok"] = cluster
	cfg.AuthInfos[serviceAccount] = user
	cfg.Contexts["sa"] = &clientcmdapi.Context{Cluster: "kwok", AuthInfo: serviceAccount, Namespace: namespace}
	cfg.CurrentContext = "sa"
	path := filepath.Join(workDir, name+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return "", err
	}
	return path, nil
}

// forbidden returns the lines of the operator's log where the API server refused it a request: every scenario runs
// under the operator's own RBAC, so any such line is a missing permission.
func (p *operatorProcess) forbidden() ([]string, error) {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(strings.ToLower(line), "forbidden") {
			out = append(out, line)
		}
	}
	return out, nil
}

// logEntry returns the first JSON line of the operator's log whose message is msg, decoded (nil when none).
func (p *operatorProcess) logEntry(msg string) (map[string]any, error) {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		entry := map[string]any{}
		if json.Unmarshal([]byte(line), &entry) == nil && entry["msg"] == msg {
			return entry, nil
		}
	}
	return nil, nil
}

// requestToken asks the API server for a token of the ServiceAccount (TokenRequest), as the kubelet does for a pod.
func requestToken(ctx context.Context, namespace, serviceAccount string) (string, error) {
	tr, err := clientset.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, serviceAccount, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](4 * 3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("requesting a token for %s/%s: %w", namespace, serviceAccount, err)
	}
	return tr.Status.Token, nil
}
