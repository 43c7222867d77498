package controllers

import (
	"testing"
	"time"
)

// fakeTimer is a quiet period the test ends itself.
type fakeTimer struct {
	running bool
	fire    func()
}

func (f *fakeTimer) Stop() bool { was := f.running; f.running = false; return was }

func (f *fakeTimer) Reset(time.Duration) bool { was := f.running; f.running = true; return was }

// end ends the quiet period, as the clock would, if it is running.
func (f *fakeTimer) end() {
	if f.running {
		f.running = false
		f.fire()
	}
}

// newTestSettler returns a settler counting its runs in *runs, and its timer (nil until armed).
func newTestSettler(runs *int) (*settler, **fakeTimer) {
	timer := new(*fakeTimer)
	s := &settler{quiet: settleQuiet, fn: func() { *runs++ }}
	s.after = func(_ time.Duration, f func()) quietTimer {
		*timer = &fakeTimer{running: true, fire: f}
		return *timer
	}
	return s, timer
}

func TestSettlerRunsOnceAfterTheFirstReadyReconcileQuietsDown(t *testing.T) {
	runs := 0
	s, timer := newTestSettler(&runs)

	// Reconciles that leave no mesh Ready do not arm it.
	for range 3 {
		s.started()
		s.ended(false)
	}
	if *timer != nil {
		t.Fatal("armed before any mesh was Ready")
	}

	// A reconcile that is still running holds it back: its quiet period is stopped, and an end that raced the
	// reconcile's start does not run it.
	s.started()
	s.ended(true)
	if *timer == nil || !(*timer).running {
		t.Fatal("not armed by the first Ready reconcile")
	}
	s.started()
	if (*timer).running {
		t.Fatal("the quiet period runs on while a reconcile runs")
	}
	(*timer).fire()
	if runs != 0 {
		t.Fatalf("ran %d times while a reconcile was running", runs)
	}
	s.ended(false) // a follow-up reconcile ends: quiet starts again
	(*timer).end()
	if runs != 1 {
		t.Fatalf("ran %d times after the quiet period, want once", runs)
	}

	// Once for the first install: later Ready reconciles do not run it again.
	s.started()
	s.ended(true)
	(*timer).end()
	if runs != 1 {
		t.Fatalf("ran %d times, want once", runs)
	}
}

func TestSettlerRunsOnceWhenStartUpIsOverAndOnceAfterTheFirstInstall(t *testing.T) {
	runs := 0
	s, timer := newTestSettler(&runs)

	// Start-up over while a reconcile runs: held back until it ends.
	s.started()
	s.startupDone()
	if *timer != nil && (*timer).running {
		t.Fatal("the quiet period started while a reconcile runs")
	}
	s.ended(false)
	(*timer).end()
	if runs != 1 {
		t.Fatalf("ran %d times after start-up, want once", runs)
	}
	s.startupDone()
	(*timer).end()
	if runs != 1 {
		t.Fatalf("ran %d times after a second start-up signal, want once", runs)
	}

	// The first install, later, runs it a second time; nothing runs it a third.
	s.started()
	s.ended(true)
	(*timer).end()
	if runs != 2 {
		t.Fatalf("ran %d times after the first install, want twice", runs)
	}
	s.startupDone()
	s.started()
	s.ended(true)
	(*timer).end()
	if runs != 2 {
		t.Fatalf("ran %d times, want twice", runs)
	}
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
