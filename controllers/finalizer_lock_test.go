package controllers

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
)

// The reconciler adds and removes its finalizer through patchFinalizer. A race between two writers cannot be staged
// deterministically, so this proves the mechanism against the real API server instead: a finalizer patch built
// from a copy that is no longer current is refused with a Conflict (a plain merge patch, as sent before, would have
// been accepted and replaced the finalizer list). It is run on a ConfigMap, which the running operator leaves alone.
func TestFinalizerPatchesAreRefusedOnAStaleCopy(t *testing.T) {
	ctx := context.Background()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "finalizer-lock"}}
	if err := k8sClient.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		live := &corev1.ConfigMap{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(cm), live); err == nil {
			live.Finalizers = nil
			_ = k8sClient.Update(ctx, live)
			_ = k8sClient.Delete(ctx, live)
		}
	})

	for _, step := range []struct {
		name   string
		change func(client.Object, string) bool
	}{
		{"adding the finalizer to a stale copy is refused", controllerutil.AddFinalizer},
		{"removing the finalizer from a stale copy is refused", controllerutil.RemoveFinalizer},
	} {
		t.Run(step.name, func(t *testing.T) {
			stale := &corev1.ConfigMap{}
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(cm), stale); err != nil {
				t.Fatal(err)
			}
			fresh := stale.DeepCopy()
			fresh.Data = map[string]string{"changed-by": step.name}
			if err := k8sClient.Update(ctx, fresh); err != nil {
				t.Fatal(err)
			}
			if err := patchFinalizer(ctx, k8sClient, stale.DeepCopy(), step.change); !apierrors.IsConflict(err) {
				t.Fatalf("patch from a stale copy: %v, want a Conflict", err)
			}
			if err := patchFinalizer(ctx, k8sClient, fresh, step.change); err != nil {
				t.Fatalf("patch from the current copy: %v", err)
			}
			live := &corev1.ConfigMap{}
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(cm), live); err != nil {
				t.Fatal(err)
			}
			want := slices.Contains(fresh.Finalizers, meshv1.Finalizer)
			if got := slices.Contains(live.Finalizers, meshv1.Finalizer); got != want || live.Data["changed-by"] != step.name {
				t.Errorf("live finalizers %v data %v: the current copy's patch was not applied as sent", live.Finalizers, live.Data)
			}
		})
	}
}
