package controllers

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// envTestNow names an environment variable for test harnesses only (the e2e suite runs the operator binary): when
// set to an RFC 3339 time, the operator's clock starts there and runs at real speed, so that end-of-life dates
// behave the same on any day. It is not a user setting and is not documented as one.
const envTestNow = "MESHWRIGHT_TEST_NOW"

// Clock is a clock that starts at a chosen time and then runs at real speed; tests move it with Set. Grace periods
// and timeouts still elapse in real time, only the date is chosen.
type Clock struct {
	mu        sync.Mutex
	start     time.Time
	realStart time.Time
}

// NewClock returns a clock that reads start now.
func NewClock(start time.Time) *Clock {
	return &Clock{start: start, realStart: time.Now()}
}

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.start.Add(time.Since(c.realStart))
}

// Set makes the clock read t now.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.start, c.realStart = t, time.Now()
}

// clockFromEnv returns time.Now, or a Clock starting at $MESHWRIGHT_TEST_NOW when a test harness sets it.
func clockFromEnv() (func() time.Time, error) {
	value, ok := os.LookupEnv(envTestNow)
	if !ok || value == "" {
		return time.Now, nil
	}
	start, err := time.Parse(time.RFC3339, value)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", envTestNow, err)
	}
	return NewClock(start).Now, nil
}
