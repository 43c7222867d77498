package render

import (
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Cache keeps the most recent renders by the hash of their Config, so a steady-state reconcile does not re-render
// (rendering istiod's charts costs hundreds of milliseconds). Returned objects are shared: callers must not modify
// them.
//
// It also keeps one render made ahead of use (Warm), without an owner: the first reconcile of a mesh whose Config
// differs from it only by the owner (a mesh's UID is unknown until it exists) copies those objects instead of
// rendering.
type Cache struct {
	mu       sync.Mutex
	max      int
	finish   func([]*unstructured.Unstructured) error
	order    []string
	entries  map[string][]*unstructured.Unstructured
	renders  int
	warmKey  string
	warmObjs []*unstructured.Unstructured
	warmHits int
	// warming is closed when the warm render in progress is done (nil when none was started).
	warming chan struct{}
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

	objs, fresh, err := c.render(cfg)
	if err != nil {
		return nil, err
	}
	if c.finish != nil {
		if err := c.finish(fresh); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
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

// render renders cfg, or makes it from the warm render when cfg is the warmed Config with an owner: objects that take
// the owner are copied, the others (CRDs, the Namespace: the largest) are shared with the warm render, which finished
// them already. fresh are the objects still to finish.
func (c *Cache) render(cfg Config) (objs, fresh []*unstructured.Unstructured, err error) {
	unowned := cfg
	unowned.Owner = nil
	key := unowned.Hash()
	c.mu.Lock()
	if warming := c.warming; warming != nil && key == c.warmKey {
		// The warm render of this very Config is under way (a mesh created as the operator starts): wait for it
		// rather than render the same thing twice on the same CPUs.
		c.mu.Unlock()
		<-warming
		c.mu.Lock()
	}
	warm := c.warmObjs
	if warm != nil && key != c.warmKey {
		warm = nil
	}
	if warm != nil {
		c.warmHits++
	} else {
		c.renders++
	}
	c.mu.Unlock()
	if warm == nil {
		objs, err := Render(cfg)
		return objs, objs, err
	}
	objs = make([]*unstructured.Unstructured, len(warm))
	for i, o := range warm {
		if cfg.Owner == nil || !takesOwner(o) {
			objs[i] = o
			continue
		}
		objs[i] = o.DeepCopy()
		setOwner(objs[i:i+1], cfg.Owner)
		fresh = append(fresh, objs[i])
	}
	return objs, fresh, nil
}

// Warm renders cfg ahead of its first use, for a Config expected soon but whose owner is not known yet (a default
// ServiceMesh before it is created). It replaces the previous warm render. A Render of the same Config while Warm
// runs waits for it.
func (c *Cache) Warm(cfg Config) error {
	cfg.Owner = nil
	return c.warm(cfg, c.beginWarm(cfg))
}

// WarmInBackground is Warm in a goroutine; a Render of the same Config from the moment it returns waits for it.
func (c *Cache) WarmInBackground(cfg Config) {
	cfg.Owner = nil
	done := c.beginWarm(cfg)
	go func() { _ = c.warm(cfg, done) }() // an error is reported by the reconcile that renders the same Config
}

// Warmed returns a channel that is closed once no warm render is in progress.
func (c *Cache) Warmed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.warming != nil {
		return c.warming
	}
	done := make(chan struct{})
	close(done)
	return done
}

func (c *Cache) beginWarm(cfg Config) chan struct{} {
	done := make(chan struct{})
	c.mu.Lock()
	defer c.mu.Unlock()
	c.warmKey, c.warmObjs, c.warming = cfg.Hash(), nil, done
	return done
}

func (c *Cache) warm(cfg Config, done chan struct{}) error {
	defer func() {
		c.mu.Lock()
		if c.warming == done {
			c.warming = nil
		}
		c.mu.Unlock()
		close(done)
	}()
	objs, err := Render(cfg)
	if err != nil {
		return err
	}
	if c.finish != nil {
		if err := c.finish(objs); err != nil {
			return err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.warming == done {
		c.warmObjs = objs
	}
	return nil
}

// WarmObjects returns the warm render once made (nil before, or if it failed): shared objects, to be read only.
func (c *Cache) WarmObjects() []*unstructured.Unstructured {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.warmObjs
}

// Renders counts the renders done (cache misses not answered by the warm render), for tests and benchmarks.
func (c *Cache) Renders() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.renders
}

// WarmHits counts the cache misses answered by copying the warm render.
func (c *Cache) WarmHits() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.warmHits
}

// setOwner makes owner the controller of every object except CRDs and Namespaces, which must outlive the mesh unless
// its deletion policy says otherwise.
func setOwner(objs []*unstructured.Unstructured, owner *metav1.OwnerReference) {
	if owner == nil {
		return
	}
	for _, o := range objs {
		if takesOwner(o) {
			o.SetOwnerReferences([]metav1.OwnerReference{*owner})
		}
	}
}

func takesOwner(o *unstructured.Unstructured) bool {
	return o.GetKind() != "CustomResourceDefinition" && o.GetKind() != "Namespace"
}
