package controllers

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/testutil"
)

func TestFinalizerIsAddedAndReleasedOnDelete(t *testing.T) {
	ctx := context.Background()
	mesh := &meshv1.ServiceMesh{}
	mesh.Name = "finalizer"
	mesh.Spec.Namespace = "finalizer-mesh"
	if err := k8sClient.Create(ctx, mesh); err != nil {
		t.Fatal(err)
	}

	testutil.Eventually(t, 10*time.Second, func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(mesh), mesh); err != nil {
			return err
		}
		if !slices.Contains(mesh.Finalizers, meshv1.Finalizer) {
			return fmt.Errorf("finalizers are %v", mesh.Finalizers)
		}
		return nil
	})

	if err := k8sClient.Delete(ctx, mesh); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		err := k8sClient.Get(ctx, client.ObjectKeyFromObject(mesh), mesh)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still present (finalizers %v, err %v)", mesh.Finalizers, err)
	})
}
