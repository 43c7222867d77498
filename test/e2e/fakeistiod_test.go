//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshwright/meshwright/internal/testutil"
	"github.com/meshwright/meshwright/test/fakeistiod"
)

// Pods that Istio injects (gateways cannot opt out) pass its sidecar-injector webhook on this cluster only while
// test/fakeistiod plays istiod: without it the ReplicaSet controller's creates are rejected, which proves the webhook
// is live; with it the pods are created with the injector's label and annotation and the Deployment becomes Available.
func TestFakeIstiodLetsInjectedPodsRollOut(t *testing.T) {
	ctx := context.Background()
	const (
		istioNS = "fakeistiod-system"
		appsNS  = "fakeistiod-apps"
		mwcName = "fakeistiod-e2e-sidecar-injector"
	)
	for _, ns := range []string{istioNS, appsNS} {
		createFixture(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		t.Cleanup(func() {
			_ = k8sClient.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		})
	}
	// istiod as the chart installs it, so that its Service has an endpoint, although nothing serves there.
	createFixture(t, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: istioNS, Name: "istiod"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "istiod"},
			Ports: []corev1.ServicePort{{Name: "https-webhook", Port: 443, TargetPort: intstr.FromInt32(15017)}}},
	})
	createFixture(t, fixtureDeployment(istioNS, "istiod", 1, map[string]string{"app": "istiod"}))
	createFixture(t, fakeistiod.InjectorFixture(mwcName, istioNS, "istiod", "", appsNS))
	t.Cleanup(func() {
		_ = k8sClient.Delete(ctx, fakeistiod.InjectorFixture(mwcName, istioNS, "istiod", "", appsNS))
	})
	gateway := fixtureDeployment(appsNS, "gateway", 2, map[string]string{"app": "gateway", "sidecar.istio.io/inject": "true"})

	t.Run("without the fake, the webhook rejects the gateway's pods", func(t *testing.T) {
		createFixture(t, gateway)
		testutil.Eventually(t, time.Minute, func() error {
			var rsets appsv1.ReplicaSetList
			if err := k8sClient.List(ctx, &rsets, client.InNamespace(appsNS), client.MatchingLabels{"app": "gateway"}); err != nil {
				return err
			}
			for _, rs := range rsets.Items {
				for _, c := range rs.Status.Conditions {
					if c.Type == appsv1.ReplicaSetReplicaFailure &&
						strings.Contains(c.Message, `failed calling webhook "object.sidecar-injector.istio.io"`) {
						return nil
					}
				}
			}
			return fmt.Errorf("no ReplicaSet of the gateway reports the injection webhook's rejection yet")
		})
		var pods corev1.PodList
		if err := k8sClient.List(ctx, &pods, client.InNamespace(appsNS)); err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) != 0 {
			t.Errorf("%d gateway pods were created past a webhook nothing serves", len(pods.Items))
		}
	})

	t.Run("with the fake, the gateway's pods are injected and the Deployment becomes Available", func(t *testing.T) {
		stop, err := fakeistiod.Start(ctx, adminCfg, fakeistiod.Options{EgressSocket: egressSocket})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
		testutil.Eventually(t, 2*time.Minute, func() error {
			var live appsv1.Deployment
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(gateway), &live); err != nil {
				return err
			}
			return testutil.WantKStatus(&live, status.CurrentStatus)
		})
		var pods corev1.PodList
		if err := k8sClient.List(ctx, &pods, client.InNamespace(appsNS), client.MatchingLabels{"app": "gateway"}); err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) < 2 {
			t.Fatalf("%d gateway pods, want 2", len(pods.Items))
		}
		for _, pod := range pods.Items {
			if got := pod.Labels[fakeistiod.RevisionLabel]; got != "default" {
				t.Errorf("pod %s: label %s = %q, want default", pod.Name, fakeistiod.RevisionLabel, got)
			}
			if pod.Annotations[fakeistiod.StatusAnnotation] == "" {
				t.Errorf("pod %s lacks the %s annotation", pod.Name, fakeistiod.StatusAnnotation)
			}
		}
	})
}

func createFixture(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8sClient.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %s %s: %v", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), err)
	}
}

func fixtureDeployment(ns, name string, replicas int32, podLabels map[string]string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": podLabels["app"]}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "auto"}}},
			},
		},
	}
}
