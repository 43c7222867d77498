// Command meshwright is the Meshwright operator manager: it runs the ServiceMesh controller, serves metrics behind
// Kubernetes authentication and authorization, and health probes (from the start, also while it waits for its CRD).
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	goruntime "runtime"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/transport"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	crleaderelection "sigs.k8s.io/controller-runtime/pkg/leaderelection"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/controllers"
	"github.com/meshwright/meshwright/internal/leader"
	"github.com/meshwright/meshwright/internal/memtrim"
	"github.com/meshwright/meshwright/internal/metricsauth"
)

// leaderElectionID names the Lease the replicas compete for.
const leaderElectionID = "meshwright.mesh.meshwright.dev"

// options are the command-line settings run needs.
type options struct {
	metricsAddr, probeAddr  string
	pprofAddr               string
	secureMetrics, http2    bool
	leaderElect             bool
	leaderElectionNamespace string
	// Lease timing: how long others wait before taking over, how long the leader tries to renew, how often.
	leaseDuration, renewDeadline, retryPeriod time.Duration
	// Client-side rate limit of requests to the API server.
	qps   float64
	burst int
}

func main() {
	// Until start-up is over (the settled function below), the collector runs less often.
	restoreGC := memtrim.RelaxGCForStartup()
	controllers.ListInformersFromTheWatchCache()
	var o options
	// In a cluster the operator may run with several replicas; out of it (make run, make demo) one process is usual.
	_, inCluster := os.LookupEnv("KUBERNETES_SERVICE_HOST")
	flag.StringVar(&o.metricsAddr, "metrics-bind-address", "0",
		"Address the metrics endpoint binds to, e.g. :8443 (HTTPS) or :8080 (HTTP); 0 disables it.")
	flag.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address the health probe endpoint binds to.")
	flag.StringVar(&o.pprofAddr, "pprof-bind-address", "0",
		"Address Go's pprof endpoint binds to, to profile CPU and memory (e.g. 127.0.0.1:6060); 0 disables it.")
	flag.BoolVar(&o.secureMetrics, "metrics-secure", true,
		"Serve metrics over HTTPS, behind Kubernetes authentication and authorization.")
	flag.BoolVar(&o.http2, "enable-http2", false,
		"Enable HTTP/2 for the metrics server (off by default: HTTP/2 Rapid Reset, CVE-2023-44487).")
	flag.BoolVar(&o.leaderElect, "leader-elect", inCluster,
		"Use leader election so that only one replica reconciles (default true in a cluster).")
	flag.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", os.Getenv("POD_NAMESPACE"),
		"Namespace of the leader election Lease; defaults to $POD_NAMESPACE (set by the Deployment), else the pod's own namespace.")
	flag.DurationVar(&o.leaseDuration, "leader-election-lease-duration", 15*time.Second,
		"How long other replicas wait, after the leader's last renewal, before taking the Lease over.")
	flag.DurationVar(&o.renewDeadline, "leader-election-renew-deadline", 10*time.Second,
		"How long the leader keeps trying to renew before it gives up, and stops writing; shorter than the lease duration.")
	flag.DurationVar(&o.retryPeriod, "leader-election-retry-period", 2*time.Second, "How often the Lease is renewed or tried.")
	flag.Float64Var(&o.qps, "kube-api-qps", 50,
		"Requests per second to the API server, sustained (client-side limit; a negative value turns the limit off and leaves it to the API server's priority and fairness).")
	flag.IntVar(&o.burst, "kube-api-burst", 100, "Requests to the API server allowed in a burst above --kube-api-qps.")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	if o.pprofAddr == "0" {
		// Heap profiles need allocation sampling, whose tables cost about 1.5 MiB; without the pprof endpoint nothing
		// reads them.
		goruntime.MemProfileRate = 0
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))

	cfg := ctrl.GetConfigOrDie()
	cfg.QPS, cfg.Burst = float32(o.qps), o.burst
	if err := run(ctrl.SetupSignalHandler(), cfg, o, restoreGC); err != nil {
		ctrl.Log.WithName("setup").Error(err, "Operator stopped with an error")
		os.Exit(1)
	}
}

// run waits for the ServiceMesh CRD, then runs the manager until ctx ends.
func run(ctx context.Context, cfg *rest.Config, o options, restoreGC func()) error {
	log := ctrl.Log.WithName("setup")
	if err := waitForServiceMeshCRD(ctx, cfg, o.probeAddr); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while waiting
		}
		return err
	}
	// Decode the default mesh's Istio CRDs while the manager is built and the Lease taken: the first install waits
	// for its render, and these are most of it.
	controllers.PrefetchFirstRender()

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(meshv1.AddToScheme(scheme))

	var tlsOpts []func(*tls.Config)
	if !o.http2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{BindAddress: o.metricsAddr, SecureServing: o.secureMetrics, TLSOpts: tlsOpts}
	if o.secureMetrics {
		metricsOpts.FilterProvider = metricsauth.Filter
	}

	// With leader election, every write is fenced behind the Lease (internal/leader): a replica that was paused past
	// its renew deadline writes nothing before it learns that another replica leads.
	var (
		fence *leader.Fence
		lock  resourcelock.Interface
		err   error
	)
	if o.leaderElect {
		fence = leader.NewFence(o.renewDeadline)
		// A copy: controller-runtime sets the leader-election user agent and a short request timeout on the config it
		// is given, which must not reach the manager's own clients (the timeout would cut every watch short).
		lock, err = fence.NewResourceLock(rest.CopyConfig(cfg), crleaderelection.Options{LeaderElection: true,
			LeaderElectionID: leaderElectionID, LeaderElectionNamespace: o.leaderElectionNamespace, RenewDeadline: o.renewDeadline})
		if err != nil {
			return fmt.Errorf("setting up leader election: %w", err)
		}
		// Every write of the manager's clients is fenced where it leaves the process; the lock's config, copied
		// above, is not (it renews the Lease).
		cfg = rest.CopyConfig(cfg)
		cfg.WrapTransport = transport.Wrappers(cfg.WrapTransport, fence.WrapTransport)
	}

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsOpts,
		HealthProbeBindAddress:  o.probeAddr,
		PprofBindAddress:        o.pprofAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        leaderElectionID,
		LeaderElectionNamespace: o.leaderElectionNamespace,
		// The fenced Lease lock (nil without leader election).
		LeaderElectionResourceLockInterface: lock,
		LeaseDuration:                       &o.leaseDuration,
		RenewDeadline:                       &o.renewDeadline,
		RetryPeriod:                         &o.retryPeriod,
		// A replica that stops releases the Lease, so its successor (a rolling update, a restart) starts at once.
		LeaderElectionReleaseOnCancel: true,
		Cache:                         controllers.CacheOptions(),
		NewCache:                      controllers.NewCache,
		Client:                        controllers.ClientOptions(),
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	reconciler, err := controllers.NewServiceMeshReconciler(mgr)
	if err != nil {
		return fmt.Errorf("creating the ServiceMesh controller: %w", err)
	}
	if fence != nil {
		reconciler.Client = fence.Client(reconciler.Client)
	}
	reconciler.SetSettled(func() {
		restoreGC()
		released, err := memtrim.Release()
		if err != nil {
			log.Error(err, "Releasing the memory only start-up used")
			return
		}
		log.Info("Released the memory only start-up used", "executableMappingsBytes", released)
	})
	if err := reconciler.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the ServiceMesh controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("setting up the health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("setting up the ready check: %w", err)
	}
	log.Info("Starting manager")
	return mgr.Start(ctx)
}

// waitForServiceMeshCRD returns once the API server serves ServiceMeshes. The manager cannot even be created before
// that (its cache must know whether ServiceMesh is namespaced), yet `kubectl apply -k config/default` and OLM create
// the CRD and the operator's Deployment together. Meanwhile the health probes are answered here, so that the kubelet
// does not restart a process that is only waiting; the manager takes the probe address over afterwards.
func waitForServiceMeshCRD(ctx context.Context, cfg *rest.Config, probeAddr string) error {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating a discovery client: %w", err)
	}
	served := func() error {
		list, err := dc.ServerResourcesForGroupVersion(meshv1.GroupVersion.String())
		if err != nil {
			return err
		}
		for _, r := range list.APIResources {
			if r.Name == "servicemeshes" {
				return nil
			}
		}
		return fmt.Errorf("%s serves no servicemeshes", meshv1.GroupVersion)
	}
	why := served()
	if why == nil {
		return nil
	}
	log := ctrl.Log.WithName("setup")
	log.Info("Waiting for the ServiceMesh CRD to be established", "reason", why.Error())
	stop, err := serveProbes(probeAddr)
	if err != nil {
		return err
	}
	defer stop()
	for delay := 500 * time.Millisecond; served() != nil; delay = min(2*delay, 10*time.Second) {
		log.V(1).Info("Still waiting for the ServiceMesh CRD", "retryIn", delay)
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the ServiceMesh CRD: %w", ctx.Err())
		case <-time.After(delay):
		}
	}
	log.Info("ServiceMesh CRD established")
	return nil
}

// serveProbes answers /healthz and /readyz on addr until stop is called ("0" or "" serves nothing).
func serveProbes(addr string) (stop func(), err error) {
	if addr == "" || addr == "0" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening for health probes on %s: %w", addr, err)
	}
	ping := &healthz.Handler{Checks: map[string]healthz.Checker{"ping": healthz.Ping}}
	mux := http.NewServeMux()
	for _, path := range []string{"/healthz", "/readyz"} {
		mux.Handle(path, http.StripPrefix(path, ping))
		mux.Handle(path+"/", http.StripPrefix(path, ping))
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
