package controllers

import (
	"sync"
	"time"
)

// settleQuiet is how long no reconcile may run, after the first one that left a mesh Ready, before start-up counts
// as over: a first install's follow-up reconciles (the event of its own status write, istiod's pods turning Ready)
// come within a few hundred milliseconds.
const settleQuiet = 500 * time.Millisecond

// settler runs its function once per process, when start-up is over: after the first reconcile that leaves a mesh
// Ready, once no reconcile has run for quiet.
type settler struct {
	quiet time.Duration

	mu    sync.Mutex
	fn    func()
	timer *time.Timer // armed since the first Ready reconcile, until it fires
	done  bool
}

// started holds the function back while a reconcile runs.
func (s *settler) started() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
	}
}

// ended arms the function, or re-arms it, after a reconcile; ready says whether it left its mesh Ready.
func (s *settler) ended(ready bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.done || s.fn == nil:
	case s.timer != nil:
		s.timer.Reset(s.quiet)
	case ready:
		s.timer = time.AfterFunc(s.quiet, s.fire)
	}
}

func (s *settler) fire() {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return
	}
	s.done = true
	fn := s.fn
	s.mu.Unlock()
	fn()
}
