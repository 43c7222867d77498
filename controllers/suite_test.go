package controllers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/meshwright/meshwright/internal/testutil"
)

// The envtest suite: one real kube-apiserver and etcd for the whole package, with the operator's manager running
// against it. k8sClient reads straight from the API server (no cache), so assertions see what the server stored.
var (
	testEnv   *envtest.Environment
	cfg       *rest.Config
	k8sClient client.Client
	// reconciler is the one the manager runs, so tests can read its render cache.
	reconciler *ServiceMeshReconciler
	// writes counts the reconciler's write requests.
	writes *testutil.CountingClient
	// clock is the reconciler's clock: it starts on suiteDate whatever the real date, so that versions with an end
	// of life behave the same on any day; tests that need another date Set it and put it back.
	clock  *Clock
	scheme = testutil.Scheme
)

// apiReader is the reconciler's APIReader; a test may route it through another identity, then back through
// managerAPIReader (the manager's own).
var (
	apiReader        *testutil.SwitchableReader
	managerAPIReader client.Reader
)

// suiteDate is the date the suite runs on: every catalog version is supported then.
var suiteDate = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	logLevel := zapcore.ErrorLevel
	if os.Getenv("TEST_VERBOSE") != "" {
		logLevel = zapcore.Level(-2)
	}
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.Level(logLevel)))
	// As main does: the suite's informers start the way the operator's do.
	ListInformersFromTheWatchCache()

	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run the tests with `make test`, which builds kube-apiserver and etcd")
		return 1
	}
	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	// ENVTEST_APISERVER_LOG=<file> keeps the API server's own log (at -v=2: its CRD cleanup reports each wait), for
	// a failure whose cause is on the server's side.
	if path := os.Getenv("ENVTEST_APISERVER_LOG"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "creating the API server log: %v\n", err)
			return 1
		}
		defer f.Close()
		apiServer := testEnv.ControlPlane.GetAPIServer()
		apiServer.Configure().Set("v", "2")
		apiServer.Out, apiServer.Err = f, f
	}
	var err error
	if cfg, err = testEnv.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "starting envtest: %v\n", err)
		return 1
	}
	defer func() {
		if err := testEnv.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping envtest: %v\n", err)
		}
	}()
	if k8sClient, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintf(os.Stderr, "creating client: %v\n", err)
		return 1
	}

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		Cache: CacheOptions(), NewCache: NewCache, Client: ClientOptions()})
	if err != nil {
		fmt.Fprintf(os.Stderr, "creating manager: %v\n", err)
		return 1
	}
	if reconciler, err = NewServiceMeshReconciler(mgr); err != nil {
		fmt.Fprintf(os.Stderr, "creating reconciler: %v\n", err)
		return 1
	}
	clock = NewClock(suiteDate)
	reconciler.Now = clock.Now
	writes = &testutil.CountingClient{Client: reconciler.Client}
	reconciler.Client = writes
	managerAPIReader = reconciler.APIReader
	apiReader = testutil.NewSwitchableReader(managerAPIReader)
	reconciler.APIReader = apiReader
	if err := reconciler.SetupWithManager(mgr); err != nil {
		fmt.Fprintf(os.Stderr, "setting up controller: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- mgr.Start(ctx) }()
	defer func() { cancel(); <-done }()

	return m.Run()
}
