package testutil

import (
	"context"
	"sync/atomic"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// SwitchableReader passes reads to a reader that a test may replace while a running manager uses it (for example
// with a client acting as a less privileged identity), without a data race.
type SwitchableReader struct {
	current atomic.Pointer[readerBox]
}

type readerBox struct{ client.Reader }

// NewSwitchableReader returns a SwitchableReader that reads through r.
func NewSwitchableReader(r client.Reader) *SwitchableReader {
	s := &SwitchableReader{}
	s.Set(r)
	return s
}

// Set makes every later read go through r.
func (s *SwitchableReader) Set(r client.Reader) { s.current.Store(&readerBox{r}) }

// Get reads through the current reader.
func (s *SwitchableReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	return s.current.Load().Get(ctx, key, obj, opts...)
}

// List reads through the current reader.
func (s *SwitchableReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	return s.current.Load().List(ctx, list, opts...)
}
