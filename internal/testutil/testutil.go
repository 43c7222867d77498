// Package testutil holds helpers shared by the envtest and e2e suites: polling with a deadline and kstatus. It is
// imported only from tests.
package testutil

import (
	"fmt"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
)

// Eventually polls cond every 100ms until it returns nil, or fails the test with cond's last error at the deadline.
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", timeout, err)
		}
		<-tick.C
	}
}

// KStatus computes the kstatus result of a typed object, as Flux, Argo CD's kstatus users and `kubectl wait` would.
// The converter keeps integers as int64, as kstatus requires (JSON or YAML decoding into a map would give float64).
func KStatus(obj runtime.Object) (*status.Result, error) {
	gvk, err := apiutil.GVKForObject(obj, Scheme)
	if err != nil {
		return nil, err
	}
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: content}
	u.SetGroupVersionKind(gvk)
	return status.Compute(u)
}

// Scheme knows the Kubernetes built-in types and the ServiceMesh API.
var Scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	utilruntime.Must(meshv1.AddToScheme(s))
	return s
}()

// WantKStatus returns an error unless obj's kstatus is want.
func WantKStatus(obj runtime.Object, want status.Status) error {
	res, err := KStatus(obj)
	if err != nil {
		return fmt.Errorf("computing kstatus: %w", err)
	}
	if res.Status != want {
		return fmt.Errorf("kstatus is %s (%s), want %s", res.Status, res.Message, want)
	}
	return nil
}
