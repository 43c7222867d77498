package leader

import (
	"context"
	"errors"
	"testing"
	"time"

	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// memLock is an in-memory lock: the fence's only contract with it is "a Create or Update that returned nil renewed
// the Lease", which needs no API server.
type memLock struct {
	resourcelock.Interface
	id  string
	err error
}

func (l *memLock) Identity() string { return l.id }
func (l *memLock) Create(context.Context, resourcelock.LeaderElectionRecord) error {
	return l.err
}
func (l *memLock) Update(context.Context, resourcelock.LeaderElectionRecord) error {
	return l.err
}

func TestFence(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	newFence := func() (*Fence, *fencedLock, *memLock) {
		f := &Fence{RenewDeadline: 10 * time.Second, Now: func() time.Time { return now }}
		inner := &memLock{id: "me"}
		return f, &fencedLock{Interface: inner, fence: f}, inner
	}
	mine := resourcelock.LeaderElectionRecord{HolderIdentity: "me"}

	t.Run("refuses writes before the Lease was ever acquired", func(t *testing.T) {
		f, _, _ := newFence()
		if err := f.Check(); !errors.Is(err, ErrLeaseExpired) {
			t.Fatalf("Check = %v, want ErrLeaseExpired", err)
		}
	})
	t.Run("allows writes within the renew deadline of an acquisition or renewal", func(t *testing.T) {
		f, lock, _ := newFence()
		if err := lock.Create(context.Background(), mine); err != nil {
			t.Fatal(err)
		}
		now = now.Add(9 * time.Second)
		if err := f.Check(); err != nil {
			t.Fatalf("Check 9s after acquiring = %v", err)
		}
		if err := lock.Update(context.Background(), mine); err != nil {
			t.Fatal(err)
		}
		now = now.Add(9 * time.Second)
		if err := f.Check(); err != nil {
			t.Fatalf("Check 9s after renewing = %v", err)
		}
	})
	t.Run("refuses writes once the renew deadline passed, as after a SIGSTOP", func(t *testing.T) {
		f, lock, _ := newFence()
		if err := lock.Update(context.Background(), mine); err != nil {
			t.Fatal(err)
		}
		now = now.Add(11 * time.Second)
		if err := f.Check(); !errors.Is(err, ErrLeaseExpired) {
			t.Fatalf("Check 11s after the last renewal = %v, want ErrLeaseExpired", err)
		}
	})
	t.Run("a failed renewal or a record naming another holder does not count", func(t *testing.T) {
		f, lock, inner := newFence()
		inner.err = errors.New("conflict")
		_ = lock.Update(context.Background(), mine)
		inner.err = nil
		_ = lock.Update(context.Background(), resourcelock.LeaderElectionRecord{HolderIdentity: "other"})
		if err := f.Check(); !errors.Is(err, ErrLeaseExpired) {
			t.Fatalf("Check = %v, want ErrLeaseExpired", err)
		}
	})
}
