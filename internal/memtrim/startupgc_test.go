package memtrim

import (
	"os"
	"runtime/debug"
	"testing"
)

// gcPercent reads the collector's GOGC without changing it.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func TestRelaxGCForStartupRaisesGOGCUntilRestored(t *testing.T) {
	if v, set := os.LookupEnv("GOGC"); set {
		t.Setenv("GOGC", v) // restored after the test
		if err := os.Unsetenv("GOGC"); err != nil {
			t.Fatal(err)
		}
	}
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)

	restore := RelaxGCForStartup()
	if got := gcPercent(); got != StartupGCPercent {
		t.Fatalf("GOGC during start-up = %d, want %d", got, StartupGCPercent)
	}
	restore()
	if got := gcPercent(); got != 100 {
		t.Fatalf("GOGC after restore = %d, want the previous 100", got)
	}
	debug.SetGCPercent(50)
	restore() // only the first call restores
	if got := gcPercent(); got != 50 {
		t.Fatalf("a second restore set GOGC to %d; it must leave 50 alone", got)
	}
}

func TestRelaxGCForStartupLeavesTheUsersGOGC(t *testing.T) {
	t.Setenv("GOGC", "150")
	before := debug.SetGCPercent(150)
	defer debug.SetGCPercent(before)

	restore := RelaxGCForStartup()
	if got := gcPercent(); got != 150 {
		t.Fatalf("GOGC = %d with GOGC=150 in the environment, want it left at 150", got)
	}
	restore()
	if got := gcPercent(); got != 150 {
		t.Fatalf("GOGC after restore = %d, want 150", got)
	}
}
