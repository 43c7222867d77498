package controllers

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshwright/meshwright/internal/testutil"
)

func TestSettlerRunsOnceAfterTheFirstReadyReconcileQuietsDown(t *testing.T) {
	var runs atomic.Int32
	s := &settler{quiet: 20 * time.Millisecond, fn: func() { runs.Add(1) }}

	// Reconciles that leave no mesh Ready do not arm it.
	for range 3 {
		s.started()
		s.ended(false)
	}
	time.Sleep(100 * time.Millisecond)
	if n := runs.Load(); n != 0 {
		t.Fatalf("ran %d times before any mesh was Ready", n)
	}

	// A reconcile that is still running holds it back, however long it takes.
	s.started()
	s.ended(true)
	s.started()
	time.Sleep(100 * time.Millisecond)
	if n := runs.Load(); n != 0 {
		t.Fatalf("ran %d times while a reconcile was running", n)
	}
	s.ended(false) // a follow-up reconcile ends: quiet starts again
	testutil.Eventually(t, 10*time.Second, func() error {
		if n := runs.Load(); n != 1 {
			return fmt.Errorf("ran %d times, want once", n)
		}
		return nil
	})

	// Once per process.
	s.started()
	s.ended(true)
	time.Sleep(100 * time.Millisecond)
	if n := runs.Load(); n != 1 {
		t.Fatalf("ran %d times, want once", n)
	}
}
