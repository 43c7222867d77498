package testutil

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CountingClient passes every call to the wrapped client and counts the write requests (create, update, patch,
// apply, delete, and status writes), so tests can prove that a steady state writes nothing.
type CountingClient struct {
	client.Client
	writes atomic.Int64
	mu     sync.Mutex
	log    []string
	detail []string
}

// Writes returns the number of write requests so far.
func (c *CountingClient) Writes() int64 { return c.writes.Load() }

// Log returns a description of the last write requests ("verb type namespace/name"), for failure messages.
func (c *CountingClient) Log() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.log)
}

// Details returns the last n write requests as Log describes them, each after the time it was made and, for a patch,
// followed by the patch's body (cut at 400 bytes): what a failure message needs to tell why a write was made.
func (c *CountingClient) Details(n int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.detail[max(0, len(c.detail)-n):])
}

func (c *CountingClient) record(verb string, obj any) {
	c.recordPatch(verb, obj, nil)
}

// recordPatch records a write; for a patch, the description ends with its body (cut at 400 bytes), which says what
// the write changed.
func (c *CountingClient) recordPatch(verb string, obj any, patch client.Patch) {
	c.writes.Add(1)
	desc := verb
	switch o := obj.(type) {
	case client.Object:
		desc = fmt.Sprintf("%s %T %s/%s", verb, o, o.GetNamespace(), o.GetName())
	case interface{ GetName() *string }:
		if n := o.GetName(); n != nil {
			desc = verb + " " + *n
		}
	}
	detail := time.Now().Format("15:04:05.000 ") + desc
	if o, ok := obj.(client.Object); ok && patch != nil {
		if body, err := patch.Data(o); err == nil {
			if len(body) > 400 {
				body = append(body[:400:400], "..."...)
			}
			detail += " " + string(body)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log, c.detail = append(c.log, desc), append(c.detail, detail)
	if len(c.log) > 50 {
		c.log, c.detail = c.log[1:], c.detail[1:]
	}
}

func (c *CountingClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	c.record("create", obj)
	return c.Client.Create(ctx, obj, opts...)
}

func (c *CountingClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	c.record("update", obj)
	return c.Client.Update(ctx, obj, opts...)
}

func (c *CountingClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	c.recordPatch("patch", obj, patch)
	return c.Client.Patch(ctx, obj, patch, opts...)
}

func (c *CountingClient) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	c.record("apply", obj)
	return c.Client.Apply(ctx, obj, opts...)
}

func (c *CountingClient) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	c.record("delete", obj)
	return c.Client.Delete(ctx, obj, opts...)
}

func (c *CountingClient) DeleteAllOf(ctx context.Context, obj client.Object, opts ...client.DeleteAllOfOption) error {
	c.record("deleteAllOf", obj)
	return c.Client.DeleteAllOf(ctx, obj, opts...)
}

func (c *CountingClient) Status() client.SubResourceWriter {
	return &countingStatus{SubResourceWriter: c.Client.Status(), c: c}
}

type countingStatus struct {
	client.SubResourceWriter
	c *CountingClient
}

func (s *countingStatus) Create(ctx context.Context, obj, sub client.Object, opts ...client.SubResourceCreateOption) error {
	s.c.record("status create", obj)
	return s.SubResourceWriter.Create(ctx, obj, sub, opts...)
}

func (s *countingStatus) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	s.c.record("status update", obj)
	return s.SubResourceWriter.Update(ctx, obj, opts...)
}

func (s *countingStatus) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	s.c.recordPatch("status patch", obj, patch)
	return s.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}

func (s *countingStatus) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.SubResourceApplyOption) error {
	s.c.record("status apply", obj)
	return s.SubResourceWriter.Apply(ctx, obj, opts...)
}
