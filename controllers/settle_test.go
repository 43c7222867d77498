package controllers

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshwright/meshwright/internal/testutil"
)

// waitRuns waits until fn ran want times, then checks that it does not run again within a while.
func waitRuns(t *testing.T, runs *atomic.Int32, want int32) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() error {
		if n := runs.Load(); n != want {
			return fmt.Errorf("ran %d times, want %d", n, want)
		}
		return nil
	})
	time.Sleep(100 * time.Millisecond)
	if n := runs.Load(); n != want {
		t.Fatalf("ran %d times, want %d", n, want)
	}
}

func TestSettlerRunsOnceAfterTheFirstReadyReconcileQuietsDown(t *testing.T) {
	var runs atomic.Int32
	s := &settler{quiet: 20 * time.Millisecond, fn: func() { runs.Add(1) }}

	// Reconciles that leave no mesh Ready do not arm it.
	for range 3 {
		s.started()
		s.ended(false)
	}
	waitRuns(t, &runs, 0)

	// A reconcile that is still running holds it back, however long it takes.
	s.started()
	s.ended(true)
	s.started()
	time.Sleep(100 * time.Millisecond)
	if n := runs.Load(); n != 0 {
		t.Fatalf("ran %d times while a reconcile was running", n)
	}
	s.ended(false) // a follow-up reconcile ends: quiet starts again
	waitRuns(t, &runs, 1)

	// Once for the first install: later Ready reconciles do not run it again.
	s.started()
	s.ended(true)
	waitRuns(t, &runs, 1)
}

func TestSettlerRunsOnceWhenStartUpIsOverAndOnceAfterTheFirstInstall(t *testing.T) {
	var runs atomic.Int32
	s := &settler{quiet: 20 * time.Millisecond, fn: func() { runs.Add(1) }}

	// Start-up over while a reconcile runs: held back until it ends.
	s.started()
	s.startupDone()
	time.Sleep(100 * time.Millisecond)
	if n := runs.Load(); n != 0 {
		t.Fatalf("ran %d times while a reconcile was running", n)
	}
	s.ended(false)
	waitRuns(t, &runs, 1)
	s.startupDone()
	waitRuns(t, &runs, 1)

	// The first install, later, runs it a second time; nothing runs it a third.
	s.started()
	s.ended(true)
	waitRuns(t, &runs, 2)
	s.startupDone()
	s.started()
	s.ended(true)
	waitRuns(t, &runs, 2)
}

func TestSettlerWithoutFunctionDoesNothing(t *testing.T) {
	s := &settler{quiet: time.Millisecond}
	s.startupDone()
	s.started()
	s.ended(true)
	if s.timer != nil || s.pending {
		t.Fatalf("a settler without a function armed itself: %+v", s)
	}
}
