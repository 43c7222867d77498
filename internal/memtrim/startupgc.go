package memtrim

import (
	"os"
	"runtime/debug"
	"sync"
)

// StartupGCPercent is the garbage collector's GOGC while the operator starts: start-up allocates several times its
// live heap in a few hundred milliseconds (Istio's CRDs decoded from YAML, every informer's initial list), and at the
// default of 100 the collector runs over and over while the first install waits on the CPU. The soft memory limit
// (GOMEMLIMIT, which config/manager sets) still bounds the heap meanwhile.
const StartupGCPercent = 400

// RelaxGCForStartup sets the collector's GOGC to StartupGCPercent, unless the process was given GOGC in its
// environment (the user's setting wins), and returns the function that puts the previous value back; it may be
// called any number of times, and only its first call restores.
func RelaxGCForStartup() (restore func()) {
	if _, set := os.LookupEnv("GOGC"); set {
		return func() {}
	}
	previous := debug.SetGCPercent(StartupGCPercent)
	var once sync.Once
	return func() { once.Do(func() { debug.SetGCPercent(previous) }) }
}
