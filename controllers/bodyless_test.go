package controllers

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshwright/meshwright/internal/apply"
)

// answerTypes records the kind of every successful PATCH answer.
type answerTypes struct {
	mu    sync.Mutex
	types []string
	next  http.RoundTripper
}

func (a *answerTypes) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := a.next.RoundTrip(req)
	if err == nil && req.Method == http.MethodPatch && resp.StatusCode < 300 {
		body, rerr := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if rerr != nil {
			return nil, rerr
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		var answer metav1.TypeMeta
		_ = json.Unmarshal(body, &answer)
		a.mu.Lock()
		a.types = append(a.types, answer.Kind)
		a.mu.Unlock()
	}
	return resp, err
}

// Bodyless applies create and update objects as the client's Apply does, ask for the object's metadata as the answer
// and return it, and fail with errors that say what went wrong as the client's do.
func TestBodylessAppliesAsTheClientDoesAndReadsOnlyTheMetadata(t *testing.T) {
	ctx := context.Background()
	answers := &answerTypes{}
	c := rest.CopyConfig(cfg)
	c.Wrap(func(next http.RoundTripper) http.RoundTripper { answers.next = next; return answers })
	hc, err := rest.HTTPClientFor(c)
	if err != nil {
		t.Fatal(err)
	}
	inner, err := client.New(c, client.Options{Scheme: scheme, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	b, err := apply.NewBodyless(inner, c, hc)
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "bodyless-"}}
	if err := k8sClient.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8sClient.Delete(ctx, ns) })

	cm := func(value string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": "applied", "namespace": ns.Name}, "data": map[string]any{"k": value}}}
	}
	for _, value := range []string{"created", "updated"} {
		answer, err := b.ApplyForMetadata(ctx, cm(value), "bodyless-test")
		if err != nil {
			t.Fatalf("applying the ConfigMap (%s): %v", value, err)
		}
		got := &corev1.ConfigMap{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: "applied"}, got); err != nil {
			t.Fatal(err)
		}
		if answer.UID != got.UID || answer.ResourceVersion != got.ResourceVersion || answer.Name != "applied" {
			t.Errorf("the answer's metadata (uid %s, resourceVersion %s, name %s) is not the applied object's (%s, %s)",
				answer.UID, answer.ResourceVersion, answer.Name, got.UID, got.ResourceVersion)
		}
		if got.Data["k"] != value {
			t.Errorf("data after the apply: %v, want k=%s", got.Data, value)
		}
		if len(got.ManagedFields) != 1 || got.ManagedFields[0].Manager != "bodyless-test" || got.ManagedFields[0].Operation != metav1.ManagedFieldsOperationApply {
			t.Errorf("managed fields %+v, want one Apply entry of bodyless-test", got.ManagedFields)
		}
	}
	role := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
		"metadata": map[string]any{"name": ns.Name + "-bodyless"}, "rules": []any{}}}
	if _, err := b.ApplyForMetadata(ctx, role, "bodyless-test"); err != nil {
		t.Fatalf("applying a cluster-scoped object: %v", err)
	}
	t.Cleanup(func() { _ = k8sClient.Delete(ctx, role) })
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(role), role.DeepCopy()); err != nil {
		t.Errorf("the applied ClusterRole: %v", err)
	}
	answers.mu.Lock()
	if len(answers.types) != 3 {
		t.Errorf("%d answers recorded, want 3", len(answers.types))
	}
	for _, kind := range answers.types {
		if kind != "PartialObjectMetadata" {
			t.Errorf("an answer came as a %q, want the object's metadata only", kind)
		}
	}
	answers.mu.Unlock()

	missing := cm("x")
	missing.SetNamespace(ns.Name + "-missing")
	if _, err := b.ApplyForMetadata(ctx, missing, "bodyless-test"); !apierrors.IsNotFound(err) {
		t.Errorf("applying into a namespace that does not exist: %v, want NotFound", err)
	}
	invalid := cm("x")
	invalid.SetName("Not_A_Name")
	if _, err := b.ApplyForMetadata(ctx, invalid, "bodyless-test"); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "Not_A_Name") {
		t.Errorf("applying an invalid name: %v, want Invalid naming it", err)
	}
	unserved := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.meshwright.dev/v1", "kind": "Nothing",
		"metadata": map[string]any{"name": "x"}}}
	if _, err := b.ApplyForMetadata(ctx, unserved, "bodyless-test"); !meta.IsNoMatchError(err) {
		t.Errorf("applying a kind that is not served: %v, want the RESTMapper's no-match error", err)
	}
}
