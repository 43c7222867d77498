package controllers

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/testutil"
)

func TestStatusFollowsTheKstatusContract(t *testing.T) {
	ctx := context.Background()
	mesh := createMesh(t, "kstatus")
	// The object the API server stored, before any reconcile, must not look Current to kstatus.
	if err := testutil.WantKStatus(mesh, status.InProgressStatus); err != nil {
		t.Errorf("a ServiceMesh nobody reconciled yet: %v", err)
	}

	testutil.Eventually(t, 10*time.Second, func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(mesh), mesh); err != nil {
			return err
		}
		if mesh.Status.ObservedGeneration != mesh.Generation {
			return fmt.Errorf("observedGeneration %d, generation %d", mesh.Status.ObservedGeneration, mesh.Generation)
		}
		return nil
	})

	ready := meta.FindStatusCondition(mesh.Status.Conditions, meshv1.ConditionReady)
	if ready == nil {
		t.Fatalf("no Ready condition after the first reconcile: %+v", mesh.Status.Conditions)
	}
	if ready.ObservedGeneration != mesh.Generation {
		t.Errorf("Ready.observedGeneration %d, want %d", ready.ObservedGeneration, mesh.Generation)
	}
	for _, c := range mesh.Status.Conditions {
		if (c.Type == meshv1.ConditionReconciling || c.Type == meshv1.ConditionStalled) && c.Status != "True" {
			t.Errorf("%s is present with status %s; kstatus wants it only while True", c.Type, c.Status)
		}
	}
	res, err := testutil.KStatus(mesh)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus := status.CurrentStatus
	if ready.Status != "True" {
		wantStatus = status.InProgressStatus
	}
	if res.Status != wantStatus {
		t.Errorf("kstatus %s (%s), want %s for Ready=%s", res.Status, res.Message, wantStatus, ready.Status)
	}
}
