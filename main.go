// Command meshwright is the Meshwright operator manager: it runs the ServiceMesh controller, serves metrics behind
// Kubernetes authentication and authorization, and health probes.
package main

import (
	"crypto/tls"
	"flag"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	crleaderelection "sigs.k8s.io/controller-runtime/pkg/leaderelection"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/controllers"
	"github.com/meshwright/meshwright/internal/leader"
)

// leaderElectionID names the Lease the replicas compete for.
const leaderElectionID = "meshwright.mesh.meshwright.dev"

func main() {
	var (
		metricsAddr   string
		probeAddr     string
		secureMetrics bool
		enableHTTP2   bool
		leaderElect   bool
		leaderNS      string
		leaseDuration time.Duration
		renewDeadline time.Duration
		retryPeriod   time.Duration
	)
	// In a cluster the operator may run with several replicas; out of it (make run, make demo) one process is usual.
	_, inCluster := os.LookupEnv("KUBERNETES_SERVICE_HOST")
	flag.StringVar(&metricsAddr, "metrics-bind-address", "0",
		"Address the metrics endpoint binds to, e.g. :8443 (HTTPS) or :8080 (HTTP); 0 disables it.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address the health probe endpoint binds to.")
	flag.BoolVar(&secureMetrics, "metrics-secure", true,
		"Serve metrics over HTTPS, behind Kubernetes authentication and authorization.")
	flag.BoolVar(&enableHTTP2, "enable-http2", false,
		"Enable HTTP/2 for the metrics server (off by default: HTTP/2 Rapid Reset, CVE-2023-44487).")
	flag.BoolVar(&leaderElect, "leader-elect", inCluster,
		"Use leader election so that only one replica reconciles (default true in a cluster).")
	flag.StringVar(&leaderNS, "leader-election-namespace", os.Getenv("POD_NAMESPACE"),
		"Namespace of the leader election Lease; defaults to $POD_NAMESPACE (set by the Deployment), else the pod's own namespace.")
	flag.DurationVar(&leaseDuration, "leader-election-lease-duration", 15*time.Second,
		"How long other replicas wait, after the leader's last renewal, before taking the Lease over.")
	flag.DurationVar(&renewDeadline, "leader-election-renew-deadline", 10*time.Second,
		"How long the leader keeps trying to renew before it gives up, and stops writing; shorter than the lease duration.")
	flag.DurationVar(&retryPeriod, "leader-election-retry-period", 2*time.Second, "How often the Lease is renewed or tried.")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	log := ctrl.Log.WithName("setup")

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(meshv1.AddToScheme(scheme))

	var tlsOpts []func(*tls.Config)
	if !enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{BindAddress: metricsAddr, SecureServing: secureMetrics, TLSOpts: tlsOpts}
	if secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}

	cfg := ctrl.GetConfigOrDie()
	// With leader election, every write is fenced behind the Lease (internal/leader): a replica that was paused past
	// its renew deadline writes nothing before it learns that another replica leads.
	var (
		fence *leader.Fence
		lock  resourcelock.Interface
		err   error
	)
	if leaderElect {
		fence = leader.NewFence(renewDeadline)
		lock, err = fence.NewResourceLock(cfg, crleaderelection.Options{LeaderElection: true,
			LeaderElectionID: leaderElectionID, LeaderElectionNamespace: leaderNS, RenewDeadline: renewDeadline})
		if err != nil {
			log.Error(err, "Unable to set up leader election")
			os.Exit(1)
		}
	}

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsOpts,
		HealthProbeBindAddress:  probeAddr,
		LeaderElection:          leaderElect,
		LeaderElectionID:        leaderElectionID,
		LeaderElectionNamespace: leaderNS,
		// The fenced Lease lock (nil without leader election).
		LeaderElectionResourceLockInterface: lock,
		LeaseDuration:                       &leaseDuration,
		RenewDeadline:                       &renewDeadline,
		RetryPeriod:                         &retryPeriod,
		// A replica that stops releases the Lease, so its successor (a rolling update, a restart) starts at once.
		LeaderElectionReleaseOnCancel: true,
		Cache:                         controllers.CacheOptions(),
		Client:                        controllers.ClientOptions(),
	})
	if err != nil {
		log.Error(err, "Unable to create manager")
		os.Exit(1)
	}
	reconciler, err := controllers.NewServiceMeshReconciler(mgr)
	if err != nil {
		log.Error(err, "Unable to create controller", "controller", "ServiceMesh")
		os.Exit(1)
	}
	if fence != nil {
		reconciler.Client = fence.Client(reconciler.Client)
	}
	if err := reconciler.SetupWithManager(mgr); err != nil {
		log.Error(err, "Unable to set up controller", "controller", "ServiceMesh")
		os.Exit(1)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		log.Error(err, "Unable to set up health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		log.Error(err, "Unable to set up ready check")
		os.Exit(1)
	}
	log.Info("Starting manager")
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "Manager exited with an error")
		os.Exit(1)
	}
}
