package controllers

import (
	"sync"
	"time"
)

// settleQuiet is how long no reconcile may run before a phase of start-up counts as over: a first install's
// follow-up reconciles (the event of its own status write, istiod's pods turning Ready) come within a few hundred
// milliseconds.
const settleQuiet = 500 * time.Millisecond

// settler runs its function when a phase of start-up is over, at most twice per process: once the operator itself
// started (startupDone: the warm render is made), and once its first install is done (the first reconcile that
// leaves a mesh Ready). Each time, it waits until no reconcile has run for quiet.
type settler struct {
	quiet time.Duration
	// after starts the quiet period's timer: time.AfterFunc unless a test drives the timer itself.
	after func(time.Duration, func()) quietTimer

	mu                   sync.Mutex
	fn                   func()
	timer                quietTimer
	pending              bool // armed and not run yet
	running              int  // reconciles in flight
	lastEnded            time.Time
	sawStartup, sawReady bool
}

// quietFor reports whether no reconcile runs, and none ended, within d before now and since since.
func (s *settler) quietFor(d time.Duration, since time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := s.lastEnded
	if since.After(last) {
		last = since
	}
	return s.running == 0 && time.Since(last) >= d
}

// quietTimer is the part of *time.Timer the settler uses.
type quietTimer interface {
	Stop() bool
	Reset(time.Duration) bool
}

// arm runs the function once reconciles have stopped for quiet. s.mu is held.
func (s *settler) arm() {
	s.pending = true
	if s.running > 0 {
		return // the reconcile's end starts the quiet period
	}
	if s.timer == nil {
		after := s.after
		if after == nil {
			after = func(d time.Duration, f func()) quietTimer { return time.AfterFunc(d, f) }
		}
		s.timer = after(s.quiet, s.fire)
		return
	}
	s.timer.Reset(s.quiet)
}

// startupDone arms the function once the operator itself has started.
func (s *settler) startupDone() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fn != nil && !s.sawStartup {
		s.sawStartup = true
		s.arm()
	}
}

// started holds the function back while a reconcile runs.
func (s *settler) started() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running++
	if s.timer != nil {
		s.timer.Stop()
	}
}

// ended restarts the quiet period after a reconcile; ready says whether it left its mesh Ready, and the first that
// did arms the function.
func (s *settler) ended(ready bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running--
	s.lastEnded = time.Now()
	switch {
	case s.fn == nil:
	case ready && !s.sawReady:
		s.sawReady = true
		s.arm()
	case s.pending:
		s.arm()
	}
}

func (s *settler) fire() {
	s.mu.Lock()
	if !s.pending || s.running > 0 {
		s.mu.Unlock()
		return
	}
	s.pending = false
	fn := s.fn
	s.mu.Unlock()
	fn()
}
