package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/testutil"
)

// logLines records the operator's log messages.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, `"msg"="`+msg+`"`) {
			n++
		}
	}
	return n
}

// An operator started before its CRD exists (kubectl apply -k, OLM) waits for it, answering its health probes
// meanwhile, then reconciles.
func TestTheOperatorWaitsForItsCRDAndStaysHealthy(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run the tests with `make test`, which builds kube-apiserver and etcd")
	}
	logs := &logLines{}
	ctrl.SetLogger(funcr.New(func(prefix, args string) {
		logs.mu.Lock()
		defer logs.mu.Unlock()
		logs.lines = append(logs.lines, args)
	}, funcr.Options{Verbosity: 1}))

	env := &envtest.Environment{} // no CRDs: the operator starts first
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Error(err)
		}
	})
	probeAddr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, options{metricsAddr: "0", probeAddr: probeAddr}, func() {}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the operator exited with an error: %v", err)
		}
	})
	const waiting = "Waiting for the ServiceMesh CRD to be established"

	t.Run("it says once why it waits, and answers its probes meanwhile", func(t *testing.T) {
		testutil.Eventually(t, 10*time.Second, func() error {
			if logs.count(waiting) == 0 {
				return fmt.Errorf("no %q log line yet", waiting)
			}
			return nil
		})
		// Across a few retries of the wait (each logged at V(1)), the probes answer every time they are asked.
		testutil.Eventually(t, 20*time.Second, func() error {
			for _, path := range []string{"/healthz", "/readyz"} {
				if err := probe(probeAddr, path); err != nil {
					t.Error(err)
				}
			}
			if n := logs.count("Still waiting for the ServiceMesh CRD"); n < 2 {
				return fmt.Errorf("%d retries of the wait so far, want 2", n)
			}
			return nil
		})
		select {
		case err := <-done:
			t.Fatalf("the operator exited while waiting for its CRD: %v", err)
		default:
		}
		if n := logs.count(waiting); n != 1 {
			t.Errorf("%q logged %d times, want once", waiting, n)
		}
	})

	t.Run("once the CRD is installed it reconciles, and stays healthy", func(t *testing.T) {
		if _, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{Paths: []string{filepath.Join("config", "crd", "bases")}}); err != nil {
			t.Fatal(err)
		}
		c, err := client.New(cfg, client.Options{Scheme: testutil.Scheme})
		if err != nil {
			t.Fatal(err)
		}
		mesh := &meshv1.ServiceMesh{ObjectMeta: metav1.ObjectMeta{Name: "late-crd"}}
		if err := c.Create(context.Background(), mesh); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 30*time.Second, func() error {
			if err := c.Get(context.Background(), client.ObjectKeyFromObject(mesh), mesh); err != nil {
				return err
			}
			if mesh.Status.ObservedGeneration != mesh.Generation || len(mesh.Status.Conditions) == 0 {
				return fmt.Errorf("not reconciled yet: %+v", mesh.Status)
			}
			return nil
		})
		if err := probe(probeAddr, "/healthz"); err != nil {
			t.Error(err)
		}
	})
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func probe(addr, path string) error {
	res, err := http.Get("http://" + addr + path)
	if err != nil {
		return fmt.Errorf("probe %s: %w", path, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("probe %s answered %s", path, res.Status)
	}
	return nil
}
