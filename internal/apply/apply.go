// Package apply applies rendered objects with server-side apply and prunes what a new render no longer contains. It
// owns the field policy (which fields Meshwright asserts, which it leaves to istiod), the ownership check (which live
// objects Meshwright may write: only those it created or was told to adopt) and the inventory IDs. It never renders,
// and it deletes only objects that still carry the owner label of the mesh being reconciled, never Namespaces, and
// never CRDs that existed before Meshwright.
package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// FieldOwner is the server-side apply field manager of everything Meshwright applies.
const FieldOwner = "meshwright"

// AnnotationAppliedHash records the hash of the configuration last applied to an object. A changed hash means the
// render changed; an unchanged hash with differing fields means someone else changed the object (drift).
const AnnotationAppliedHash = "mesh.meshwright.dev/applied-hash"

// Result says what an Apply did.
type Result struct {
	// Created, Updated and Drifted list the IDs of objects written; objects already in sync are not written.
	// Updated objects changed because the render changed; Drifted ones because someone else changed them.
	Created []string
	Updated []string
	Drifted []string
	// Adopted lists objects taken over because they carry the adopt annotation; PreExisting lists CRDs that existed
	// before without the owner label, updated and marked so that they are never deleted. Both were written.
	Adopted     []ObjectID
	PreExisting []ObjectID
	// Orphans lists objects labelled for an owner that no longer exists, taken over. They were written.
	Orphans []ObjectID
	// UsedAsIs lists Namespaces that existed before: not written.
	UsedAsIs []ObjectID
	// Unchanged counts objects that were already in sync.
	Unchanged int
}

// Changed reports whether anything was written.
func (r Result) Changed() bool {
	return len(r.Created)+len(r.Updated)+len(r.Drifted)+len(r.Adopted)+len(r.PreExisting)+len(r.Orphans) > 0
}

// Applier applies objects of one owner. Reader should be the manager's cache, so that an object in sync costs no
// API request; Writer talks to the API server.
type Applier struct {
	Reader client.Reader
	Writer client.Client
	// Uncached answers the ownership check of objects missing from Reader (metadata-only GETs straight from the API
	// server: an object without the owner label is in no cache), and confirms that an object Delete cannot find in
	// the cache is really gone; Writer when nil (for Delete: no confirmation).
	Uncached client.Reader
	// OwnerLabel and Owner select the objects this applier may consider its own: live objects are looked up among
	// them, and only objects still carrying OwnerLabel=Owner are ever deleted.
	OwnerLabel, Owner string
	// Claims are the results of an earlier Check of the same objects, so that Apply need not ask again.
	Claims Claims
	// OwnerExists, when set, tells whether another owner still exists: an object labelled for an owner that is gone
	// was created by Meshwright and is taken over (ClaimOrphan) instead of being a conflict.
	OwnerExists func(ctx context.Context, owner string) (bool, error)
	// Batch, when set, groups consecutive objects that may be written at the same time (the render's stage), and
	// Concurrency bounds how many are in flight; objects are otherwise applied one at a time.
	Batch       func(*unstructured.Unstructured) int
	Concurrency int
	// MetadataOnly, when set, names the kinds Reader holds as metadata only, and remembers which of their live
	// objects were seen to hold a render.
	MetadataOnly *MetadataOnly
}

// MetadataOnly is for kinds whose live objects the Applier's Reader returns as metadata only (CustomResourceDefinitions:
// Istio's are large). Whether such an object still holds every field of the render is known without reading it again
// as long as it is the same object (uid) at the same generation (the API server moves a generation with every change
// of spec) as when it was last seen to: a write's answer, or a read of the whole object from Live. It is shared by
// the Appliers of every reconcile.
type MetadataOnly struct {
	Kinds map[schema.GroupKind]bool
	// Live reads a whole object of those kinds (the API server).
	Live client.Reader
	// Ahead, when not nil, is closed once live objects checked ahead (Check) are recorded. Until then an Apply takes
	// an object whose metadata matches the render as it is, without reading it whole, and Deferred says so: a first
	// install after a restart does not wait for the check, and the caller applies again once it is done.
	Ahead <-chan struct{}

	deferred atomic.Bool

	mu   sync.Mutex
	seen map[ObjectID]inSyncAt
}

// inSyncAt is a version of an object seen to hold the render of an applied hash.
type inSyncAt struct {
	uid        types.UID
	generation int64
	hash       string
}

func (m *MetadataOnly) covers(id ObjectID) bool { return m != nil && m.Kinds[id.GroupKind] }

// Deferred reports whether an Apply took an object as it is before Ahead was closed. Read it after Ahead is closed:
// an Apply that finds Ahead open records it first.
func (m *MetadataOnly) Deferred() bool { return m.deferred.Load() }

// checked reports whether the check ahead is done; if not, the object is taken as it is, which Deferred records.
func (m *MetadataOnly) checked() bool {
	if m.Ahead == nil {
		return true
	}
	select {
	case <-m.Ahead:
		return true
	default:
	}
	m.deferred.Store(true)
	// Closed meanwhile: the closer may have read Deferred before it was set, so the object is checked now instead.
	select {
	case <-m.Ahead:
		return true
	default:
		return false
	}
}

// Check records which of the whole live objects hold the render of the desired object of the same ID (desired
// stamped with their applied hash): a process that has just started learns it ahead of its first Apply, in one list.
func (m *MetadataOnly) Check(desired []*unstructured.Unstructured, live []unstructured.Unstructured) {
	byID := map[ObjectID]*unstructured.Unstructured{}
	for i := range live {
		byID[IDOf(&live[i])] = &live[i]
	}
	for _, d := range desired {
		id := IDOf(d)
		l := byID[id]
		hash := d.GetAnnotations()[AnnotationAppliedHash]
		if !m.covers(id) || l == nil || hash == "" || l.GetAnnotations()[AnnotationAppliedHash] != hash {
			continue
		}
		if driftedField(d.Object, l.Object, "") == "" {
			m.record(id, l, hash)
		}
	}
}

func (m *MetadataOnly) holds(id ObjectID, live metav1.Object, hash string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seen[id] == inSyncAt{uid: live.GetUID(), generation: live.GetGeneration(), hash: hash}
}

func (m *MetadataOnly) record(id ObjectID, live metav1.Object, hash string) {
	if live.GetUID() == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[ObjectID]inSyncAt{}
	}
	m.seen[id] = inSyncAt{uid: live.GetUID(), generation: live.GetGeneration(), hash: hash}
}

// StampHashes records in each object the hash of its configuration (AnnotationAppliedHash), once per render, so
// that a steady-state Apply need not serialise every object again.
func StampHashes(objs []*unstructured.Unstructured) error {
	for _, o := range objs {
		if err := stampHash(o); err != nil {
			return err
		}
	}
	return nil
}

func stampHash(o *unstructured.Unstructured) error {
	ann := o.GetAnnotations()
	delete(ann, AnnotationAppliedHash)
	o.SetAnnotations(ann)
	raw, err := json.Marshal(o.Object)
	if err != nil {
		return fmt.Errorf("hashing %s: %w", IDOf(o), err)
	}
	sum := sha256.Sum256(raw)
	if ann == nil {
		ann = map[string]string{}
	}
	ann[AnnotationAppliedHash] = hex.EncodeToString(sum[:8])
	o.SetAnnotations(ann)
	return nil
}

// Apply server-side applies objs in order (the render's stage order). An object whose live state already holds every
// field Meshwright asserts, with the same applied hash, is not written. Objects missing from the owner's labelled live
// objects are checked first (see Check): on any conflict Apply writes nothing and returns a *ConflictError. objs are
// not modified.
func (a *Applier) Apply(ctx context.Context, objs []*unstructured.Unstructured) (Result, error) {
	var res Result
	live, err := a.liveObjects(ctx, objs)
	if err != nil {
		return res, err
	}
	claims, err := a.claim(ctx, objs, live)
	if err != nil {
		return res, err
	}
	outcomes := make([]outcome, len(objs))
	err = a.inBatches(objs, func(i int) error {
		var err error
		outcomes[i], err = a.applyOne(ctx, objs[i], live[IDOf(objs[i])], claims[IDOf(objs[i])])
		return err
	})
	for i, o := range outcomes {
		id := IDOf(objs[i])
		switch o {
		case outcomeUsedAsIs:
			res.UsedAsIs = append(res.UsedAsIs, id)
		case outcomeUnchanged:
			res.Unchanged++
		case outcomeAdopted:
			res.Adopted = append(res.Adopted, id)
		case outcomePreExisting:
			res.PreExisting = append(res.PreExisting, id)
		case outcomeOrphan:
			res.Orphans = append(res.Orphans, id)
		case outcomeCreated:
			res.Created = append(res.Created, id.String())
		case outcomeDrifted:
			res.Drifted = append(res.Drifted, id.String())
		case outcomeUpdated:
			res.Updated = append(res.Updated, id.String())
		}
	}
	return res, err
}

// outcome is what applying one object did.
type outcome int

const (
	outcomeNotApplied outcome = iota
	outcomeUsedAsIs
	outcomeUnchanged
	outcomeAdopted
	outcomePreExisting
	outcomeOrphan
	outcomeCreated
	outcomeDrifted
	outcomeUpdated
)

// inBatches runs do for every index of objs: consecutive objects of the same Batch run concurrently (at most
// Concurrency at once), each batch only after the previous one finished, so the render's stage order still holds
// (CRDs before their objects, webhooks last). Without Batch, objects are applied one by one. The first error stops
// the batches that follow; the objects of its own batch may have been applied.
func (a *Applier) inBatches(objs []*unstructured.Unstructured, do func(int) error) error {
	return runBatched(objs, a.Batch, a.Concurrency, do)
}

// runBatched runs do for every index of objs, consecutive objects of the same batch concurrently (at most workers at
// once), one batch after the other.
func runBatched(objs []*unstructured.Unstructured, batch func(*unstructured.Unstructured) int, workers int, do func(int) error) error {
	workers = max(workers, 1)
	for start := 0; start < len(objs); {
		end := start + 1
		for batch != nil && end < len(objs) && batch(objs[end]) == batch(objs[start]) {
			end++
		}
		if batch == nil || workers == 1 {
			end = start + 1
		}
		errs := make([]error, end-start)
		sem := make(chan struct{}, workers)
		var wg sync.WaitGroup
		for i := start; i < end; i++ {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				errs[i-start] = do(i)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// applyOne applies one object given its live state (nil when absent) and claim.
func (a *Applier) applyOne(ctx context.Context, desired, current *unstructured.Unstructured, claim Claim) (outcome, error) {
	id := IDOf(desired)
	if current == nil && claim == ClaimUseAsIs {
		return outcomeUsedAsIs, nil
	}
	preExisting := claim == ClaimPreExisting || (current != nil && current.GetAnnotations()[AnnotationPreExisting] == "true")
	obj := withFieldPolicy(desired, current)
	if obj != desired {
		// The policy left fields out of a copy: its hash must say so.
		if err := stampHash(obj); err != nil {
			return outcomeNotApplied, err
		}
	}
	hash := obj.GetAnnotations()[AnnotationAppliedHash]
	if hash == "" {
		// Not stamped by the render cache: stamp a copy, never the caller's object.
		obj = obj.DeepCopy()
		if err := stampHash(obj); err != nil {
			return outcomeNotApplied, err
		}
		hash = obj.GetAnnotations()[AnnotationAppliedHash]
	}
	sameHash := current != nil && current.GetAnnotations()[AnnotationAppliedHash] == hash
	if sameHash {
		field, err := a.drifted(ctx, id, obj, current, hash)
		if err != nil {
			return outcomeNotApplied, err
		}
		if field == "" {
			return outcomeUnchanged, nil
		}
		log.FromContext(ctx).V(1).Info("Repairing drift", "object", id.String(), "field", field)
	}
	if preExisting {
		// Rendered objects are shared with the render cache: the annotation goes on a copy.
		if obj == desired {
			obj = obj.DeepCopy()
		}
		// Derived from the live object, not the render: it does not enter the applied hash.
		ann := obj.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[AnnotationPreExisting] = "true"
		obj.SetAnnotations(ann)
	}
	// ForceOwnership is safe here: Check made sure the object is absent, already ours, adopted, left by a deleted
	// owner, or a CRD that must follow the version's schema.
	applied, err := a.write(ctx, obj)
	if err != nil {
		return outcomeNotApplied, fmt.Errorf("applying %s: %w", id, err)
	}
	if a.MetadataOnly.covers(id) {
		// The answer is the object as applied, with force: it holds every field of the render.
		a.MetadataOnly.record(id, &applied, hash)
	}
	switch {
	case current == nil && claim == ClaimAdopt:
		return outcomeAdopted, nil
	case current == nil && claim == ClaimPreExisting:
		return outcomePreExisting, nil
	case current == nil && claim == ClaimOrphan:
		return outcomeOrphan, nil
	case current == nil:
		return outcomeCreated, nil
	case sameHash:
		return outcomeDrifted, nil
	}
	return outcomeUpdated, nil
}

// write server-side applies obj with force, leaves obj as it is (it may be shared with the render cache) and returns
// the applied object's metadata: read alone from the API server when Writer can (MetadataApplier), else from a copy,
// into which the client decodes the whole answer.
func (a *Applier) write(ctx context.Context, obj *unstructured.Unstructured) (metav1.ObjectMeta, error) {
	if w, ok := a.Writer.(MetadataApplier); ok {
		return w.ApplyForMetadata(ctx, obj, FieldOwner)
	}
	applied := obj.DeepCopy()
	if err := a.Writer.Apply(ctx, client.ApplyConfigurationFromUnstructured(applied), client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return metav1.ObjectMeta{}, err
	}
	return metav1.ObjectMeta{UID: applied.GetUID(), Generation: applied.GetGeneration(), ResourceVersion: applied.GetResourceVersion()}, nil
}

// drifted returns the path of the first field of the render (obj) that the live object (current, with the same
// applied hash) does not hold, "" when it holds them all. A live object of a MetadataOnly kind has only its metadata:
// its spec is read from the API server unless this very version of it was already seen to hold the render.
func (a *Applier) drifted(ctx context.Context, id ObjectID, obj, current *unstructured.Unstructured, hash string) (string, error) {
	if !a.MetadataOnly.covers(id) {
		return driftedField(obj.Object, current.Object, ""), nil
	}
	if field := driftedField(obj.Object["metadata"], current.Object["metadata"], ".metadata"); field != "" {
		return field, nil
	}
	if a.MetadataOnly.holds(id, current, hash) || !a.MetadataOnly.checked() {
		return "", nil
	}
	whole := &unstructured.Unstructured{}
	whole.SetGroupVersionKind(obj.GroupVersionKind())
	if err := a.MetadataOnly.Live.Get(ctx, client.ObjectKeyFromObject(obj), whole); err != nil {
		if apierrors.IsNotFound(err) {
			return ".", nil // deleted since the cache saw it: applied again
		}
		return "", fmt.Errorf("reading %s: %w", id, err)
	}
	field := driftedField(obj.Object, whole.Object, "")
	if field == "" && whole.GetAnnotations()[AnnotationAppliedHash] == hash {
		a.MetadataOnly.record(id, whole, hash)
	}
	return field, nil
}

// liveObjects lists, kind by kind, the owner's objects from the Reader without copying them (they are only read),
// which is far cheaper than a Get per object: a Get from the cache deep-copies, and Istio's CRDs are large.
func (a *Applier) liveObjects(ctx context.Context, objs []*unstructured.Unstructured) (map[ObjectID]*unstructured.Unstructured, error) {
	out := map[ObjectID]*unstructured.Unstructured{}
	listed := map[schema.GroupVersionKind]bool{}
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		if listed[gvk] {
			continue
		}
		listed[gvk] = true
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		err := a.Reader.List(ctx, list, client.MatchingLabels{a.OwnerLabel: a.Owner}, client.UnsafeDisableDeepCopy)
		if meta.IsNoMatchError(err) {
			continue // the kind is not served yet (its CRD comes with this apply)
		}
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", gvk.Kind, err)
		}
		for i := range list.Items {
			// The items are the cache's own objects: never write to them (another reconcile or the informer may be
			// reading them). A cached item lacking its kind is copied before it is given one.
			item := &list.Items[i]
			if item.GroupVersionKind() != gvk {
				item = item.DeepCopy()
				item.SetGroupVersionKind(gvk)
			}
			out[IDOf(item)] = item
		}
	}
	return out, nil
}

// Delete deletes the inventory entries ids whose live object still carries OwnerLabel=Owner, and returns the entries
// that could not be deleted (they stay in the inventory and are tried again). Objects already gone, objects whose
// owner label was removed or changed (a user took them over), Namespaces and CRDs marked pre-existing are left
// alone and count as deleted.
func (a *Applier) Delete(ctx context.Context, ids []string) (remaining []string, err error) {
	return a.DeleteExcept(ctx, ids, nil)
}

// DeleteExcept is Delete, except that objects for which keep returns true are left alone and stay in remaining.
func (a *Applier) DeleteExcept(ctx context.Context, ids []string, keep func(*unstructured.Unstructured) bool) (remaining []string, err error) {
	var errs []error
	for _, entry := range ids {
		id, perr := ParseID(entry)
		if perr != nil {
			continue // an entry we cannot read was not written by this version; nothing to delete
		}
		mapping, merr := a.Writer.RESTMapper().RESTMapping(id.GroupKind)
		if meta.IsNoMatchError(merr) {
			continue // the kind no longer exists, so neither does the object
		}
		if merr != nil {
			remaining, errs = append(remaining, entry), append(errs, merr)
			continue
		}
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(mapping.GroupVersionKind)
		key := client.ObjectKey{Namespace: id.Namespace, Name: id.Name}
		gerr := a.Writer.Get(ctx, key, live)
		if apierrors.IsNotFound(gerr) && a.Uncached != nil {
			// A cache can lag behind the API server: an informer whose CRD was deleted and created again relists
			// only after its watch's backoff. An object the cache does not know is looked up on the API server
			// before it counts as gone, or a deletion would leave it behind.
			gerr = a.Uncached.Get(ctx, key, live)
		}
		if gerr != nil {
			if !apierrors.IsNotFound(gerr) {
				remaining, errs = append(remaining, entry), append(errs, gerr)
			}
			continue
		}
		if live.GetLabels()[a.OwnerLabel] != a.Owner || spared(live) {
			continue
		}
		if keep != nil && keep(live) {
			remaining = append(remaining, entry)
			continue
		}
		if derr := a.Writer.Delete(ctx, live, client.PropagationPolicy("Background"),
			client.Preconditions{UID: ptr(live.GetUID())}); derr != nil && !apierrors.IsNotFound(derr) {
			remaining, errs = append(remaining, entry), append(errs, fmt.Errorf("deleting %s: %w", entry, derr))
		}
	}
	return remaining, errors.Join(errs...)
}

func ptr[T any](v T) *T { return &v }
