package controllers

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/testutil"
)

func TestFinalizerIsAddedAndReleasedOnDelete(t *testing.T) {
	ctx := context.Background()
	mesh := createMesh(t, "finalizer")

	testutil.Eventually(t, 10*time.Second, func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(mesh), mesh); err != nil {
			return err
		}
		if !slices.Contains(mesh.Finalizers, meshv1.Finalizer) {
			return fmt.Errorf("finalizers are %v", mesh.Finalizers)
		}
		return nil
	})

	deleteMesh(t, mesh)
}
