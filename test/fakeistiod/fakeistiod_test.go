package fakeistiod_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/meshwright/meshwright/internal/testutil"
	"github.com/meshwright/meshwright/test/fakeistiod"
)

var (
	cfg    *rest.Config
	kube   kubernetes.Interface
	socket string
)

// TestMain starts kube-apiserver (envtest) with its "cluster" egress through the socket the fake listens on, as
// hack/cluster.sh starts the kwok cluster's.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run the tests with `make test`, which builds kube-apiserver and etcd")
		return 1
	}
	dir, err := os.MkdirTemp("", "fakeistiod-") // short: a Unix socket path has at most 107 bytes
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	socket = filepath.Join(dir, "egress.sock")
	egress := filepath.Join(dir, "egress.yaml")
	if err := os.WriteFile(egress, fakeistiod.EgressSelectorConfig(socket), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env := &envtest.Environment{}
	env.ControlPlane.GetAPIServer().Configure().Set("egress-selector-config-file", egress)
	if cfg, err = env.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "starting envtest:", err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	if kube, err = kubernetes.NewForConfig(cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// Pods the injector webhooks select are rejected while nothing serves the webhooks, admitted with the calling
// revision's label and status annotation while the fake runs, and rejected again once it stops.
func TestInjectedPodsAreCreatableOnlyWhileTheFakeRuns(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name, service, revLabel, want string
	}{
		{name: "the default revision's webhook (service istiod) labels pods istio.io/rev=default",
			service: "istiod", revLabel: "default", want: "default"},
		{name: "a revision's webhook without an istio.io/rev label takes the revision from its service istiod-canary",
			service: "istiod-canary", want: "canary"},
	}
	namespaces, services := kube.CoreV1().Namespaces(), kube.CoreV1().Services("istio-system")
	mwcs := kube.AdmissionregistrationV1().MutatingWebhookConfigurations()
	must[*corev1.Namespace](t)(namespaces.Create(ctx, namespace("istio-system"), metav1.CreateOptions{}))
	for i, tc := range cases {
		apps := fmt.Sprintf("apps-%d", i)
		must[*corev1.Namespace](t)(namespaces.Create(ctx, namespace(apps), metav1.CreateOptions{}))
		must[*corev1.Service](t)(services.Create(ctx, service("istio-system", tc.service), metav1.CreateOptions{}))
		must[*admissionv1.MutatingWebhookConfiguration](t)(mwcs.Create(ctx,
			fakeistiod.InjectorFixture("istio-sidecar-injector-"+tc.service, "istio-system", tc.service, tc.revLabel, apps), metav1.CreateOptions{}))
	}

	t.Run("without the fake, creating a selected pod is rejected by the webhook", func(t *testing.T) {
		for i := range cases {
			wantRejected(t, fmt.Sprintf("apps-%d", i))
		}
	})

	stop, err := fakeistiod.Start(ctx, cfg, fakeistiod.Options{EgressSocket: socket})
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			apps := fmt.Sprintf("apps-%d", i)
			var pod *corev1.Pod
			testutil.Eventually(t, 30*time.Second, func() error {
				var err error
				pod, err = kube.CoreV1().Pods(apps).Create(ctx, injectedPod(""), metav1.CreateOptions{})
				return err
			})
			if got := pod.Labels[fakeistiod.RevisionLabel]; got != tc.want {
				t.Errorf("label %s = %q, want %q", fakeistiod.RevisionLabel, got, tc.want)
			}
			if !strings.Contains(pod.Annotations[fakeistiod.StatusAnnotation], `"revision":"`+tc.want+`"`) {
				t.Errorf("annotation %s = %q, want one naming revision %s", fakeistiod.StatusAnnotation, pod.Annotations[fakeistiod.StatusAnnotation], tc.want)
			}
			if pod.Labels["app"] != "injected" {
				t.Errorf("the pod's own labels were lost: %v", pod.Labels)
			}
			wantCABundleOwnedByIstiod(t, "istio-sidecar-injector-"+tc.service)
		})
	}
	t.Run("pods the webhooks do not select are left alone", func(t *testing.T) {
		pod := injectedPod("")
		pod.Labels["sidecar.istio.io/inject"] = "false"
		got, err := kube.CoreV1().Pods("apps-0").Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := got.Labels[fakeistiod.RevisionLabel]; ok {
			t.Errorf("an unselected pod was labelled: %v", got.Labels)
		}
	})

	stop()
	t.Run("once the fake stops, creating a selected pod is rejected again", func(t *testing.T) {
		wantRejected(t, "apps-0")
	})
}

func wantRejected(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	testutil.Eventually(t, 30*time.Second, func() error {
		pod, err := kube.CoreV1().Pods(ns).Create(ctx, injectedPod(""), metav1.CreateOptions{})
		if err == nil {
			_ = kube.CoreV1().Pods(ns).Delete(ctx, pod.Name, metav1.DeleteOptions{})
			return fmt.Errorf("pod %s/%s was admitted", ns, pod.Name)
		}
		if !strings.Contains(err.Error(), `failed calling webhook "object.sidecar-injector.istio.io"`) {
			return fmt.Errorf("rejected, but not by the injector webhook: %w", err)
		}
		return nil
	})
}

func wantCABundleOwnedByIstiod(t *testing.T, name string) {
	t.Helper()
	mwc, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(mwc.Webhooks[0].ClientConfig.CABundle) == 0 {
		t.Errorf("%s has no caBundle", name)
	}
	for _, mf := range mwc.ManagedFields {
		if mf.Manager == fakeistiod.FieldManager && mf.Operation == metav1.ManagedFieldsOperationApply &&
			strings.Contains(string(mf.FieldsV1.Raw), `"f:caBundle"`) {
			return
		}
	}
	t.Errorf("no server-side apply of caBundle by field manager %q in %s", fakeistiod.FieldManager, name)
}

// must fails the test on an error other than AlreadyExists (fixtures are shared by the cases).
func must[T any](t *testing.T) func(T, error) {
	return func(_ T, err error) {
		t.Helper()
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
}

func namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// service is an istiod Service as the chart renders it: port 443 to the webhook's 15017.
func service(ns, name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "https-webhook", Port: 443, TargetPort: intstr.FromInt32(15017)}},
		},
	}
}

func injectedPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, GenerateName: "injected-",
			Labels: map[string]string{"app": "injected", "sidecar.istio.io/inject": "true"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}},
	}
}
