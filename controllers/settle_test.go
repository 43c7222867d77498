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

// endQuiet ends the quiet period, as the clock would, and fails unless the function has run want times in all.
func endQuiet(t *testing.T, timer *fakeTimer, runs *int, want int, when string) {
	t.Helper()
	timer.end()
	if *runs != want {
		t.Fatalf("ran %d times %s, want %d", *runs, when, want)
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
	endQuiet(t, *timer, &runs, 1, "after the quiet period")

	// Once for the first install: later Ready reconciles do not run it again.
	s.started()
	s.ended(true)
	endQuiet(t, *timer, &runs, 1, "after a later Ready reconcile")
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
	endQuiet(t, *timer, &runs, 1, "after start-up")
	s.startupDone()
	endQuiet(t, *timer, &runs, 1, "after a second start-up signal")

	// The first install, later, runs it a second time; nothing runs it a third.
	s.started()
	s.ended(true)
	endQuiet(t, *timer, &runs, 2, "after the first install")
	s.startupDone()
	s.started()
	s.ended(true)
	endQuiet(t, *timer, &runs, 2, "after both phases were over")
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

func TestQuietForCountsFromTheLaterOfSinceAndTheLastReconcile(t *testing.T) {
	s := &settler{}
	since := time.Now().Add(-time.Second)
	if !s.quietFor(500*time.Millisecond, since) {
		t.Error("no reconcile for a second: want quiet")
	}
	if s.quietFor(500*time.Millisecond, time.Now()) {
		t.Error("counting from just now: want not quiet yet")
	}
	s.started()
	if s.quietFor(0, since) {
		t.Error("a reconcile running: want not quiet")
	}
	s.ended(false)
	if s.quietFor(500*time.Millisecond, since) {
		t.Error("a reconcile that just ended: want not quiet")
	}
}
