package render

import (
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Cache keeps the most recent renders by the hash of their Config, so a steady-state reconcile does not re-render
// (rendering istiod's charts costs hundreds of milliseconds). Returned objects are shared: callers must not modify
// them.
type Cache struct {
	mu      sync.Mutex
	max     int
	finish  func([]*unstructured.Unstructured) error
	order   []string
	entries map[string][]*unstructured.Unstructured
	renders int
}

// NewCache returns a cache of at most max renders (one per ServiceMesh and revision is enough). finish, if not nil,
// runs once on each new render before it is cached (the applier stamps its hashes there).
func NewCache(max int, finish func([]*unstructured.Unstructured) error) *Cache {
	return &Cache{max: max, finish: finish, entries: map[string][]*unstructured.Unstructured{}}
}

// Render returns the cached render of cfg, rendering it on a miss.
func (c *Cache) Render(cfg Config) ([]*unstructured.Unstructured, error) {
	key := cfg.Hash()
	c.mu.Lock()
	if objs, ok := c.entries[key]; ok {
		c.mu.Unlock()
		return objs, nil
	}
	c.mu.Unlock()

	objs, err := Render(cfg)
	if err != nil {
		return nil, err
	}
	if c.finish != nil {
		if err := c.finish(objs); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.renders++
	if _, ok := c.entries[key]; !ok {
		c.entries[key] = objs
		c.order = append(c.order, key)
		for len(c.order) > c.max {
			delete(c.entries, c.order[0])
			c.order = c.order[1:]
		}
	}
	return c.entries[key], nil
}

// Renders counts the renders done (cache misses), for tests and benchmarks.
func (c *Cache) Renders() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.renders
}
