// Command fakeistiod plays istiod's part towards the API server of the local kwok cluster (hack/cluster.sh) until
// interrupted: it answers Istio's sidecar-injection webhooks, so pods that Istio injects (gateways) can be created,
// patches the webhooks' caBundle, and marks Istio's GatewayClasses Accepted. See test/fakeistiod.
//
//	go run ./hack/fakeistiod --kubeconfig bin/kubeconfig --egress-socket "$(hack/cluster.sh egress-socket)"
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/meshwright/meshwright/test/fakeistiod"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fakeistiod:", err)
		os.Exit(1)
	}
}

func run() error {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster (admin)")
	socket := flag.String("egress-socket", "", "the Unix socket of kube-apiserver's cluster egress: `hack/cluster.sh egress-socket`")
	klog.InitFlags(nil)
	flag.Parse()
	if *kubeconfig == "" || *socket == "" {
		return fmt.Errorf("--kubeconfig and --egress-socket are required")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fmt.Errorf("loading %s: %w", *kubeconfig, err)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	stop, err := fakeistiod.Start(ctx, cfg, fakeistiod.Options{EgressSocket: *socket})
	if err != nil {
		return err
	}
	<-ctx.Done()
	stop()
	return nil
}
