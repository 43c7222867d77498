// Package fakeistiod plays istiod's part towards the API server on a local cluster where istiod does not run (kwok
// fakes its pods): it serves the sidecar-injection webhooks that Istio's MutatingWebhookConfigurations point at,
// patches their caBundle as istiod does, and marks Istio's GatewayClasses Accepted. Injection is a stand-in: pods get
// the istio.io/rev label and the sidecar.istio.io/status annotation the real injector adds, nothing else.
//
// It is a test and development tool (the e2e suite, hack/fakeistiod for `make demo`), never part of the operator.
//
// The API server reaches it through its egress selector: hack/cluster.sh starts kube-apiserver with an
// EgressSelectorConfiguration whose "cluster" egress is an HTTP CONNECT proxy on a Unix socket, and this package
// listens on that socket. kube-apiserver calls a webhook service at its ClusterIP:port (no DNS), so the proxy looks
// the target up among the Services the injector webhooks reference and hands matching connections to the in-process
// webhook server; other loopback targets are forwarded unchanged, anything else is refused. No TCP port is opened.
package fakeistiod

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
)

// FieldManager is the field manager of the caBundle and GatewayClass status writes.
const FieldManager = "istiod"

// Options configures Start.
type Options struct {
	// EgressSocket is the Unix socket kube-apiserver's "cluster" egress selection dials (HTTPConnect over UDS); see
	// `hack/cluster.sh egress-socket`. A stale socket file is replaced.
	EgressSocket string
	// Logger receives progress and errors; klog's background logger if zero.
	Logger klog.Logger
}

// Start serves the injection webhooks until ctx ends or stop is called; stop waits for every goroutine to return and
// removes the socket. It returns once the injector webhooks that exist have their caBundle patched (webhooks created
// later are patched as they appear); the API server may still use the old caBundle for a moment.
func Start(ctx context.Context, cfg *rest.Config, opts Options) (stop func(), err error) {
	if opts.EgressSocket == "" {
		return nil, errors.New("fakeistiod: Options.EgressSocket is required")
	}
	log := opts.Logger
	if log.GetSink() == nil {
		log = klog.Background()
	}
	log = log.WithName("fakeistiod")
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building the clientset: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building the dynamic client: %w", err)
	}
	ca, err := newAuthority()
	if err != nil {
		return nil, err
	}
	if err := os.Remove(opts.EgressSocket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing the stale socket %s: %w", opts.EgressSocket, err)
	}
	sock, err := net.Listen("unix", opts.EgressSocket)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", opts.EgressSocket, err)
	}

	ctx, cancel := context.WithCancel(ctx)
	hooks := newHookTable()
	watch, err := watchInjectors(ctx, kube, ca, hooks, log)
	if err != nil {
		cancel()
		_ = sock.Close()
		return nil, err
	}
	srv := newWebhookServer(ca, log)
	px := &proxy{kube: kube, hooks: hooks, webhook: srv.conns, log: log}
	var wg sync.WaitGroup
	run := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	run(func() { srv.serve() })
	run(func() { px.serve(ctx, sock) })
	run(watch)
	run(func() { acceptGatewayClasses(ctx, kube.Discovery(), dyn, log) })
	run(func() {
		<-ctx.Done()
		_ = sock.Close()
		srv.close()
	})
	log.Info("Serving the injection webhooks", "socket", opts.EgressSocket)

	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			_ = os.Remove(opts.EgressSocket)
		})
	}, nil
}

// EgressSelectorConfig is the kube-apiserver --egress-selector-config-file content that sends the "cluster" egress
// (webhooks, aggregated APIs, kubelets) through the proxy on socket; hack/cluster.sh writes the same.
func EgressSelectorConfig(socket string) []byte {
	return []byte(`apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: HTTPConnect
    transport:
      uds:
        udsName: ` + socket + "\n")
}
