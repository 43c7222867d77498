package controllers

import (
	"fmt"
	"testing"
	"time"

	"github.com/meshwright/meshwright/internal/testutil"
)

func TestTheOperatorClockStartsWhereATestHarnessSaysAndRuns(t *testing.T) {
	t.Run("without MESHWRIGHT_TEST_NOW it is the real clock", func(t *testing.T) {
		t.Setenv(envTestNow, "")
		now, err := clockFromEnv()
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(now()); d < 0 || d > time.Minute {
			t.Errorf("clock reads %s, want about the real time", now())
		}
	})
	t.Run("with MESHWRIGHT_TEST_NOW it starts on that date and advances", func(t *testing.T) {
		t.Setenv(envTestNow, "2027-06-02T09:00:00Z")
		now, err := clockFromEnv()
		if err != nil {
			t.Fatal(err)
		}
		start := time.Date(2027, 6, 2, 9, 0, 0, 0, time.UTC)
		first := now()
		if first.Before(start) || first.Sub(start) > time.Minute {
			t.Errorf("clock read %s, want about %s", first, start)
		}
		testutil.Eventually(t, time.Second, func() error {
			if second := now(); !second.After(first) {
				return fmt.Errorf("clock read %s then %s, want a running clock", first, second)
			}
			return nil
		})
	})
	t.Run("a malformed MESHWRIGHT_TEST_NOW is an error, not the real clock", func(t *testing.T) {
		t.Setenv(envTestNow, "next tuesday")
		if _, err := clockFromEnv(); err == nil {
			t.Error("accepted")
		}
	})
}
